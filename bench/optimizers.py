"""One ask/tell interface over matdb's proposer and its peers, for ``bench/bench_decisions.py``.

Each adapter is built for one problem and seed, is told the made experiments (``y`` NaN where
the synthesis failed, ``ok`` False there) and asked for a batch (rows of variable values; the
harness rounds them to the lab's resolution and makes them). Peers (scikit-optimize, BayBE, Ax)
are optional (the ``bench`` extra); :func:`available` says which import.

How failures reach a peer: none of the peers' default loops models failed syntheses, so a failed
experiment is told as the worst value measured so far (the usual user's workaround); matdb is
told the failure itself (``feasible=False``) and models p(feasible).
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from bench.problems import Problem

__all__ = ["ADAPTERS", "available"]


def _impute(y: np.ndarray, ok: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Failed experiments as the worst value measured so far (0 when nothing was measured)."""
    good = seen[np.isfinite(seen)]
    worst = float(good.min()) if len(good) else 0.0
    return np.where(ok & np.isfinite(y), y, worst)


class Adapter:
    name = "?"

    def __init__(self, problem: Problem, seed: int) -> None:
        self.p, self.seed = problem, seed
        self.X = np.zeros((0, problem.dim))
        self.y = np.zeros(0)
        self.ok = np.zeros(0, bool)

    def tell(self, X: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
        self.X = np.vstack([self.X, X])
        self.y = np.concatenate([self.y, y])
        self.ok = np.concatenate([self.ok, ok])
        self._tell(X, y, ok)

    def _tell(self, X: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
        pass

    def ask(self, n: int) -> np.ndarray:
        raise NotImplementedError


class RandomSearch(Adapter):
    name = "random"

    def __init__(self, problem: Problem, seed: int) -> None:
        super().__init__(problem, seed)
        self.rng = np.random.default_rng([seed, 99])

    def ask(self, n: int) -> np.ndarray:
        return self.p.sample(n, self.rng)


class Matdb(Adapter):
    name = "matdb"

    def __init__(self, problem: Problem, seed: int) -> None:
        super().__init__(problem, seed)
        from screening.optimizer import Optimizer, Variable

        variables = [Variable(q.name, q.lo, q.hi, resolution=q.resolution) for q in problem.params]
        self.opt = Optimizer(
            variables,
            constraints=problem.constraint_text,
            direction="max",
            seed=seed,
            slots=problem.slots,
            shared=problem.shared,
        )

    def _tell(self, X: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
        self.opt.tell(pd.DataFrame(X, columns=self.p.names), y, ok)

    def ask(self, n: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = self.opt.ask(n)
        return table[self.p.names].to_numpy(float)


class Skopt(Adapter):
    name = "skopt_gp_ei"

    def __init__(self, problem: Problem, seed: int) -> None:
        super().__init__(problem, seed)
        from skopt import Optimizer
        from skopt.space import Real

        A, b = problem.linear()
        kw = {}
        if len(A):
            kw["space_constraint"] = lambda x: bool(np.all(A @ np.asarray(x, float) <= b + 1e-9))
        self.opt = Optimizer(
            [Real(q.lo, q.hi, name=q.name) for q in problem.params],
            base_estimator="GP",
            acq_func="EI",
            n_initial_points=0,
            random_state=seed,
            **kw,
        )

    def _tell(self, X: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
        v = _impute(y, ok, self.y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.opt.tell([list(map(float, x)) for x in X], [-float(t) for t in v])  # skopt minimises

    def ask(self, n: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.opt.ask(n_points=n), float)


class Baybe(Adapter):
    name = "baybe"

    def __init__(self, problem: Problem, seed: int) -> None:
        super().__init__(problem, seed)
        from baybe import Campaign
        from baybe.objectives import SingleTargetObjective
        from baybe.parameters import NumericalContinuousParameter
        from baybe.searchspace import SearchSpace
        from baybe.targets import NumericalTarget
        from baybe.utils.random import set_random_seed

        set_random_seed(seed)
        params = [NumericalContinuousParameter(q.name, bounds=(q.lo, q.hi)) for q in problem.params]
        cons = []
        for coefs, ub in problem.constraints:
            from baybe.constraints import ContinuousLinearConstraint

            cons.append(
                ContinuousLinearConstraint(
                    parameters=list(coefs), operator="<=", coefficients=list(coefs.values()), rhs=ub
                )
            )
        try:
            target = NumericalTarget(name="y", mode="MAX")
        except TypeError:  # BayBE >= 0.14 spells the direction as minimize=
            target = NumericalTarget(name="y")
        self.campaign = Campaign(
            searchspace=SearchSpace.from_product(params, constraints=cons or None),
            objective=SingleTargetObjective(target),
        )

    def _tell(self, X: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
        df = pd.DataFrame(X, columns=self.p.names)
        df["y"] = _impute(y, ok, self.y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.campaign.add_measurements(df, numerical_measurements_must_be_within_tolerance=False)

    def ask(self, n: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = self.campaign.recommend(batch_size=n)
        return rec[self.p.names].to_numpy(float)


class Ax(Adapter):
    """Ax's ``Client``: its default generation strategy, or (``botorch=True``) BoTorch's modular
    model from the first proposal on (no initialisation of its own after the shared starts)."""

    name = "ax_default"
    botorch = False

    def __init__(self, problem: Problem, seed: int) -> None:
        super().__init__(problem, seed)
        from ax.api.client import Client
        from ax.api.configs import RangeParameterConfig

        logging.disable(logging.WARNING)  # Ax logs every trial at INFO
        self.client = Client(random_seed=seed)
        self.client.configure_experiment(
            parameters=[
                RangeParameterConfig(name=q.name, parameter_type="float", bounds=(q.lo, q.hi)) for q in problem.params
            ],
            parameter_constraints=problem.constraint_text,
        )
        self.client.configure_optimization(objective="y")
        if self.botorch:
            self.client.configure_generation_strategy(initialization_budget=0)

    def _tell(self, X: np.ndarray, y: np.ndarray, ok: np.ndarray) -> None:
        v = _impute(y, ok, self.y)
        pending = getattr(self, "_pending", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, x in enumerate(X):
                params = {k: float(t) for k, t in zip(self.p.names, x, strict=True)}
                if pending is not None and i < len(pending):
                    # the made point (rounded) replaces the proposal: tell Ax what was made
                    self.client.mark_trial_abandoned(pending[i])
                idx = self.client.attach_trial(parameters=params)
                self.client.complete_trial(trial_index=idx, raw_data={"y": float(v[i])})
        self._pending = None

    def ask(self, n: int) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trials = self.client.get_next_trials(max_trials=n)
        self._pending = list(trials)
        return np.array([[trials[t][k] for k in self.p.names] for t in trials], float)


class AxBotorch(Ax):
    name = "ax_botorch"
    botorch = True


ADAPTERS: dict[str, tuple[type[Adapter], str | None]] = {
    "matdb": (Matdb, None),
    "random": (RandomSearch, None),
    "skopt_gp_ei": (Skopt, "skopt"),
    "baybe": (Baybe, "baybe"),
    "ax_default": (Ax, "ax"),
    "ax_botorch": (AxBotorch, "ax"),
}


def available(name: str) -> bool:
    """Whether the adapter's library imports (peers live in the optional ``bench`` extra)."""
    mod = ADAPTERS[name][1]
    return mod is None or importlib.util.find_spec(mod) is not None


def make(name: str, problem: Problem, seed: int) -> Adapter:
    cls: Callable[[Problem, int], Adapter] = ADAPTERS[name][0]
    return cls(problem, seed)
