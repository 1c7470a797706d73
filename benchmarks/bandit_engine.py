"""Speed and memory of the batched GP bandit engine against plain BoTorch loops.

On one machine, in one run, for each arm count (default 50 and 500; 200 steps):

(a) BoTorch, no refitting: Thompson sampling with a `SingleTaskGP` whose kernel, constant
    mean and noise (`train_Yvar`) are fixed; `MaxPosteriorSampling` draws one joint posterior
    sample over all arms per step. Three ways are timed: "rebuild" (a new model on all data
    each step, arms as an index column and a fixed kernel-matrix kernel), "condition"
    (`condition_on_observations`, a fantasy update of the prediction caches), and
    "embeddings" (rebuild, with the 384-d points as inputs and an RBF kernel of the same
    fixed lengthscale: the same GP, computed as a BoTorch user on embeddings would). The
    speed-up is taken against the cheapest of the three.
(b) BoTorch with `fit_gpytorch_mll` every step (default `SingleTaskGP` on the 384-d points:
    RBF kernel, learned mean, outputscale and noise), few runs and steps, first arm count.
(c) the engine (`GPBanditEngine` + `ThompsonPolicy`), `--runs` runs at once, with
    calibration off (the fixed kernel of (a): the headline), and with kernel calibration on
    (`KernelCalibration()`: each run fits a temperature and outputscale to its own rewards
    after 5, 10, 20, ... observations, batched), compared with (a) and with (b), the BoTorch
    user who refits hyperparameters every step.

The kernel is an RBF over random 384-d points (the size of MiniLM embeddings), lengthscale
half the median distance. Prints per run-step times (the median over repeats, and the
minimum, which is the least disturbed by other processes on a shared machine), the speed-up
ratios, peak memory (each phase runs in its own process: peak resident set size from
`resource.getrusage`, its rise over the process after setup, and on CUDA
`torch.cuda.max_memory_allocated`), and the largest difference between the BoTorch and the
engine posteriors (mean and covariance over all arms) along one shared 200-step trajectory.
The last two lines are `speedup_vs_botorch=<ratio> max_posterior_diff=<float>` for the first
arm count (median ratio of the uncalibrated engine against the cheapest no-refit BoTorch
loop; the posterior difference is the largest over the "rebuild" and "embeddings"
trajectories), then `calibrated_speedup_vs_botorch=<ratio> vs_refit=<ratio>` (the calibrated
engine against the same loop, and against BoTorch refitting every step).

Both sides run with the same number of torch threads, by default every core this process may
use (`--threads 1` for single-core figures).

Usage:
    python benchmarks/bandit_engine.py --quick              # a small check of the same ratios
    python benchmarks/bandit_engine.py                      # CPU, 50 and 500 arms
    python benchmarks/bandit_engine.py --device cuda --runs 10000 --arms 500 \\
        --memory-budget-gb 40
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import time
import warnings

DTYPE_NAME = "float64"


def _setup(threads: int):
    import torch

    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    return torch


def _problem(n_arms: int, seed: int = 0):
    """RBF kernel on random 384-d points, true values N(0, 1)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    points = torch.randn(n_arms, 384, generator=generator, dtype=torch.float64)
    distances = torch.cdist(points, points)
    lengthscale = distances[distances > 0].median() / 2
    kernel = torch.exp(-0.5 * (distances / lengthscale) ** 2)
    values = torch.randn(n_arms, generator=generator, dtype=torch.float64)
    return points, kernel, values


MEAN, NOISE_VARIANCE, REWARD_SD = 0.0, 0.25, 0.5
BOTORCH_VARIANTS = ("rebuild", "condition", "embeddings")


def _matrix_kernel(kernel):
    import gpytorch

    class FixedMatrixKernel(gpytorch.kernels.Kernel):
        """A fixed covariance matrix over arm indices (an `n x 1` index column)."""

        def __init__(self, matrix) -> None:
            super().__init__()
            self.register_buffer("matrix", matrix)

        def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
            rows, cols = x1[..., 0].round().long(), x2[..., 0].round().long()
            if diag:
                return self.matrix[rows, cols]
            return self.matrix[rows.unsqueeze(-1), cols.unsqueeze(-2)]

    return FixedMatrixKernel(kernel)


def _embedding_kernel(points):
    """RBF over the 384-d points with the fixed lengthscale of `_problem` (outputscale 1)."""
    import gpytorch
    import torch

    distances = torch.cdist(points, points)
    kernel = gpytorch.kernels.RBFKernel().to(torch.float64)
    kernel.lengthscale = distances[distances > 0].median() / 2
    kernel.requires_grad_(False)
    return kernel


def _fixed_model(covar_module, mean_module, arms, rewards, points=None):
    import torch
    from botorch.models import SingleTaskGP

    train_x = torch.tensor(arms, dtype=torch.float64).unsqueeze(-1)
    if points is not None:
        train_x = points[torch.tensor(arms)]
    train_y = torch.tensor(rewards, dtype=torch.float64).unsqueeze(-1)
    return SingleTaskGP(
        train_x,
        train_y,
        train_Yvar=torch.full_like(train_y, NOISE_VARIANCE),
        covar_module=covar_module,
        mean_module=mean_module,
        outcome_transform=None,
    )


def _botorch_run(kernel, values, steps, seed, variant, record=False, points=None):
    """One BoTorch Thompson run; returns (seconds wall, seconds CPU, trajectory, posteriors).

    variant: "rebuild" (a new SingleTaskGP on all data each step, index inputs and the fixed
    kernel matrix), "condition" (`condition_on_observations`), or "embeddings" (rebuild, with
    the 384-d points as inputs and a fixed-lengthscale RBF kernel: the same GP, computed the
    way a BoTorch user on embeddings would).
    """
    import gpytorch
    import torch
    from botorch.generation import MaxPosteriorSampling

    n_arms = kernel.shape[0]
    torch.manual_seed(seed)
    reward_generator = torch.Generator().manual_seed(10_000 + seed)
    inputs = None
    if variant == "embeddings":
        inputs = points
        covar_module = _embedding_kernel(points)
        candidates = points
    else:
        covar_module = _matrix_kernel(kernel)
        candidates = torch.arange(n_arms, dtype=torch.float64).unsqueeze(-1)
    mean_module = gpytorch.means.ConstantMean()
    mean_module.initialize(constant=MEAN)
    arms, rewards, posteriors = [], [], []

    def pull(arm: int) -> float:
        noise = torch.randn((), generator=reward_generator, dtype=torch.float64)
        return float(values[arm] + REWARD_SD * noise)

    def record_posterior() -> None:
        with torch.no_grad():
            posterior = model.posterior(candidates)
            posteriors.append(
                (posterior.mean.squeeze(-1).clone(), posterior.distribution.covariance_matrix)
            )

    wall, cpu = time.perf_counter(), time.process_time()
    arm = int(torch.randint(n_arms, (), generator=reward_generator))  # first pull: random
    arms.append(arm)
    rewards.append(pull(arm))
    model = _fixed_model(covar_module, mean_module, arms, rewards, inputs)
    for _ in range(steps - 1):
        if record:
            record_posterior()
        with torch.no_grad():
            chosen = MaxPosteriorSampling(model, replacement=True)(candidates, num_samples=1)
        if variant == "embeddings":
            arm = int((candidates == chosen).all(-1).nonzero()[0])
        else:
            arm = int(chosen.round().item())
        reward = pull(arm)
        arms.append(arm)
        rewards.append(reward)
        if variant == "condition":
            model = model.condition_on_observations(
                torch.tensor([[float(arm)]], dtype=torch.float64),
                torch.tensor([[reward]], dtype=torch.float64),
                noise=torch.tensor([[NOISE_VARIANCE]], dtype=torch.float64),
            )
        else:
            model = _fixed_model(covar_module, mean_module, arms, rewards, inputs)
    if record:
        record_posterior()
    return time.perf_counter() - wall, time.process_time() - cpu, (arms, rewards), posteriors


def _botorch_refit_run(points, values, steps, seed):
    import torch
    from botorch.fit import fit_gpytorch_mll
    from botorch.generation import MaxPosteriorSampling
    from botorch.models import SingleTaskGP
    from gpytorch.mlls import ExactMarginalLogLikelihood

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(10_000 + seed)
    low, high = points.min(0).values, points.max(0).values
    unit = (points - low) / (high - low)
    n_arms = points.shape[0]
    arms = torch.randint(n_arms, (2,), generator=generator).tolist()
    rewards = [float(values[a] + REWARD_SD * torch.randn((), generator=generator)) for a in arms]
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        train_y = torch.tensor(rewards, dtype=torch.float64).unsqueeze(-1)
        model = SingleTaskGP(unit[arms], train_y)
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        with torch.no_grad():
            chosen = MaxPosteriorSampling(model, replacement=True)(unit, num_samples=1)
        arm = int((unit == chosen).all(-1).nonzero()[0])
        arms.append(arm)
        rewards.append(float(values[arm] + REWARD_SD * torch.randn((), generator=generator)))
    return time.perf_counter() - wall, time.process_time() - cpu


def _memory(torch, device, baseline_kb: int) -> dict:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"peak_rss_mb": peak_kb / 1024, "rss_rise_mb": (peak_kb - baseline_kb) / 1024}
    if device.startswith("cuda"):
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def _engine_runner(torch, n_arms, runs, steps, device, budget_bytes, calibrated=False):
    from deepalign.agents.calibration import KernelCalibration
    from deepalign.agents.engine import GPBanditEngine
    from deepalign.agents.engine.policies import ThompsonPolicy

    _, kernel, values = _problem(n_arms)
    calibration = KernelCalibration() if calibrated else None

    def run(n_runs: int = runs, horizon: int = steps):
        engine = GPBanditEngine(
            kernel.to(device), MEAN, NOISE_VARIANCE, memory_budget_bytes=budget_bytes,
            calibration=calibration,
        )
        trajectory = engine.simulate(
            ThompsonPolicy(), values.to(device), REWARD_SD, horizon, range(n_runs)
        )
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return engine, trajectory

    return run, values


def phase_timing(n_arms, steps, botorch_runs, engine_runs, repeats, threads, device, budget):
    """(a) both BoTorch variants and (c) the engine, interleaved run by run in one process,
    so that a change in the machine's load hits all three alike."""
    torch = _setup(threads)
    points, kernel, values = _problem(n_arms)
    engine_run, _ = _engine_runner(torch, n_arms, engine_runs, steps, device, budget)
    calibrated_run, _ = _engine_runner(torch, n_arms, engine_runs, steps, device, budget, True)
    for variant in BOTORCH_VARIANTS:  # warm-up (imports, caches, allocator)
        _botorch_run(kernel, values, 3, seed=999, variant=variant, points=points)
    engine_run(8, 5)
    calibrated_run(8, 12)
    timings = {
        name: {"wall": [], "cpu": []} for name in (*BOTORCH_VARIANTS, "engine", "calibrated")
    }
    for index in range(max(botorch_runs, repeats)):
        if index < botorch_runs:
            for variant in BOTORCH_VARIANTS:
                wall, cpu, _, _ = _botorch_run(kernel, values, steps, index, variant, points=points)
                timings[variant]["wall"].append(wall / steps)
                timings[variant]["cpu"].append(cpu / steps)
        if index < repeats:
            wall, cpu = time.perf_counter(), time.process_time()
            engine, trajectory = engine_run()
            timings["engine"]["wall"].append((time.perf_counter() - wall) / (engine_runs * steps))
            timings["engine"]["cpu"].append((time.process_time() - cpu) / (engine_runs * steps))
            wall, cpu = time.perf_counter(), time.process_time()
            calibrated_run()
            timings["calibrated"]["wall"].append(
                (time.perf_counter() - wall) / (engine_runs * steps)
            )
            timings["calibrated"]["cpu"].append(
                (time.process_time() - cpu) / (engine_runs * steps)
            )
    late = trajectory.arms[:, -steps // 4 :].cpu()
    timings["engine"]["best_arm_fraction_last_quarter"] = float(
        (late == int(values.argmax())).double().mean()
    )
    per_chunk = max(1, budget // engine.bytes_per_run(steps))
    timings["engine"]["runs_per_chunk"] = min(per_chunk, engine_runs)
    timings["engine"]["setup"] = (
        f"update block {engine.update_block}, random numbers "
        + ("prefetched on a worker thread" if engine.uses_prefetch() else "drawn in the loop")
    )
    return timings


def phase_memory_botorch(n_arms, steps, variant, threads):
    torch = _setup(threads)
    points, kernel, values = _problem(n_arms)
    _botorch_run(kernel, values, 3, seed=999, variant=variant, points=points)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _botorch_run(kernel, values, steps, 0, variant, points=points)
    return _memory(torch, "cpu", baseline)


def phase_memory_engine(n_arms, steps, runs, threads, device, budget_bytes):
    torch = _setup(threads)
    engine_run, _ = _engine_runner(torch, n_arms, runs, steps, device, budget_bytes)
    engine_run(8, 5)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    engine_run()
    return _memory(torch, device, baseline)


def phase_refit(n_arms, steps, runs, threads):
    torch = _setup(threads)
    points, _, values = _problem(n_arms)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    walls, cpus = [], []
    for seed in range(runs):
        wall, cpu = _botorch_refit_run(points, values, steps, seed)
        walls.append(wall / steps)
        cpus.append(cpu / steps)
    return {"wall": walls, "cpu": cpus, **_memory(torch, "cpu", baseline)}


def phase_shared_trajectory(n_arms, steps, threads):
    """Max |BoTorch - engine| of posterior mean and covariance along BoTorch trajectories."""
    torch = _setup(threads)
    from deepalign.agents.engine import GPBanditEngine

    points, kernel, values = _problem(n_arms)
    worst = {}
    for variant in ("rebuild", "embeddings"):
        _, _, (arms, rewards), posteriors = _botorch_run(
            kernel, values, steps, seed=0, variant=variant, record=True, points=points
        )
        posterior = GPBanditEngine(kernel, MEAN, NOISE_VARIANCE).prior(1)
        worst[variant] = 0.0
        for step, (arm, reward) in enumerate(zip(arms, rewards)):
            posterior.observe(torch.tensor([arm]), torch.tensor([reward], dtype=torch.float64))
            mean, covariance = posteriors[step]
            worst[variant] = max(
                worst[variant],
                float((posterior.mean[0] - mean).abs().max()),
                float((posterior.covariance[0] - covariance).abs().max()),
            )
    return {"max_posterior_diff": worst, "observations": len(arms)}


def _in_process(function, *args):
    """Run one phase in a fresh process, so its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f} us"


def _summary(result: dict) -> tuple[float, float, float]:
    """(median wall, min wall, median cpu) seconds per run-step."""
    return (
        statistics.median(result["wall"]),
        min(result["wall"]),
        statistics.median(result["cpu"]),
    )


def _memory_text(result: dict) -> str:
    text = f"peak RSS {result['peak_rss_mb']:.0f} MB (+{result['rss_rise_mb']:.0f} MB in the phase)"
    if "cuda_peak_mb" in result:
        text += f", CUDA peak {result['cuda_peak_mb']:.0f} MB"
    return text


#: `--quick`: one arm count, shorter runs, fewer repeats (about a minute on 2 cores).
QUICK = {"arms": [50], "runs": 64, "steps": 50, "repeats": 2, "botorch_runs": 2,
         "refit_runs": 1, "refit_steps": 5}


def main() -> None:
    from deepalign.agents.engine import usable_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="engine device: cpu, cuda, cuda:1 ...")
    parser.add_argument("--arms", type=int, nargs="+", default=[50, 500])
    parser.add_argument("--runs", type=int, default=256, help="engine runs per batch")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=4, help="engine repeats (timing)")
    parser.add_argument("--botorch-runs", type=int, default=4, help="BoTorch runs, first arms")
    parser.add_argument("--botorch-runs-large", type=int, default=2, help="... other arms")
    parser.add_argument("--refit-runs", type=int, default=2)
    parser.add_argument("--refit-steps", type=int, default=10)
    parser.add_argument(
        "--threads",
        type=int,
        default=usable_cores(),
        help="torch threads per process, the same for BoTorch and the engine (default: the "
        "cores this process may use; 1 gives the single-core figures, where the engine "
        "draws random numbers on a worker thread if a second core exists)",
    )
    parser.add_argument("--memory-budget-gb", type=float, default=1.0, help="engine budget")
    parser.add_argument("--quick", action="store_true",
                        help="a small check of the same comparisons: " + ", ".join(
                            f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                        + " (options given explicitly win)")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            if getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)

    import botorch
    import torch

    print(
        f"torch {torch.__version__}, botorch {botorch.__version__}, threads {args.threads}, "
        f"engine device {args.device}, {DTYPE_NAME}, {args.steps} steps"
    )
    budget = int(args.memory_budget_gb * 2**30)
    headline = None
    for index, n_arms in enumerate(args.arms):
        botorch_runs = args.botorch_runs if index == 0 else args.botorch_runs_large
        timings = _in_process(
            phase_timing,
            n_arms,
            args.steps,
            botorch_runs,
            args.runs,
            args.repeats,
            args.threads,
            args.device,
            budget,
        )
        for variant in BOTORCH_VARIANTS:
            memory = _in_process(phase_memory_botorch, n_arms, args.steps, variant, args.threads)
            median, best, cpu = _summary(timings[variant])
            print(
                f"[{n_arms} arms] (a) BoTorch no refit, {variant:10s}: {_us(median)}/run-step "
                f"(min {_us(best)}, cpu {_us(cpu)}; {botorch_runs} runs), " + _memory_text(memory)
            )
        if index == 0:
            refit = _in_process(
                phase_refit, n_arms, args.refit_steps, args.refit_runs, args.threads
            )
            median, best, cpu = _summary(refit)
            print(
                f"[{n_arms} arms] (b) BoTorch refit each step: {_us(median)}/run-step "
                f"(min {_us(best)}, cpu {_us(cpu)}; {args.refit_runs} runs x "
                f"{args.refit_steps} steps), " + _memory_text(refit)
            )
        engine = timings["engine"]
        memory = _in_process(
            phase_memory_engine, n_arms, args.steps, args.runs, args.threads, args.device, budget
        )
        e_median, e_best, e_cpu = _summary(engine)
        state_mb = args.runs * n_arms**2 * 8 / 2**20
        print(
            f"[{n_arms} arms] (c) engine Thompson: {_us(e_median)}/run-step (min {_us(e_best)}, "
            f"cpu {_us(e_cpu)}; {args.runs} runs x {args.repeats} repeats, "
            f"{engine['runs_per_chunk']} runs per chunk; {engine['setup']}), "
            f"covariance state {state_mb:.1f} MB, "
            + _memory_text(memory)
        )
        c_median, c_best, c_cpu = _summary(timings["calibrated"])
        print(
            f"[{n_arms} arms] (c) engine Thompson, calibrated: {_us(c_median)}/run-step "
            f"(min {_us(c_best)}, cpu {_us(c_cpu)}; {args.runs} runs x {args.repeats} repeats; "
            "temperature x outputscale grid 7 x 5, fits after 5, 10, 20, ... observations)"
        )
        print(
            f"[{n_arms} arms]     engine best-arm share over the last quarter: "
            f"{engine['best_arm_fraction_last_quarter']:.2f}"
        )
        cheaper = min(BOTORCH_VARIANTS, key=lambda name: _summary(timings[name])[0])
        b_median, b_best, b_cpu = _summary(timings[cheaper])
        ratio = b_median / e_median
        print(
            f"[{n_arms} arms] speed-up vs BoTorch no refit ({cheaper}): {ratio:,.0f}x median, "
            f"{b_best / e_best:,.0f}x min, {b_cpu / e_cpu:,.0f}x cpu time"
        )
        print(
            f"[{n_arms} arms] calibrated engine speed-up vs BoTorch no refit ({cheaper}): "
            f"{b_median / c_median:,.0f}x median, {b_best / c_best:,.0f}x min"
        )
        if index == 0:
            r_median, r_best, r_cpu = _summary(refit)
            print(
                f"[{n_arms} arms] speed-up vs BoTorch refit each step: "
                f"{r_median / e_median:,.0f}x median, {r_best / e_best:,.0f}x min, "
                f"{r_cpu / e_cpu:,.0f}x cpu time; calibrated engine "
                f"{r_median / c_median:,.0f}x median"
            )
        shared = _in_process(phase_shared_trajectory, n_arms, args.steps, args.threads)
        diffs = shared["max_posterior_diff"]
        print(
            f"[{n_arms} arms] max |BoTorch - engine| posterior mean/covariance over a shared "
            f"{shared['observations']}-step trajectory: "
            + ", ".join(f"{diff:.3g} ({name})" for name, diff in diffs.items())
        )
        if index == 0:
            headline = (ratio, max(diffs.values()), b_median / c_median, r_median / c_median)
    print(f"speedup_vs_botorch={headline[0]:.1f} max_posterior_diff={headline[1]:.3g}")
    print(f"calibrated_speedup_vs_botorch={headline[2]:.1f} vs_refit={headline[3]:.1f}")


if __name__ == "__main__":
    main()
