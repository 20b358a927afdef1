#!/usr/bin/env python3
"""Side-by-side speed of dream and other engines on the same ONNX graph, interleaved in rounds.

    python3 Tests/Benchmarks/compare.py                                  # forward: googlenet, squeezenet, mobilenetv2-shapes at 224 and 512
    python3 Tests/Benchmarks/compare.py --models my.onnx --sizes 224
    python3 Tests/Benchmarks/compare.py --mode dream --sizes 224 512 1024 # DeepDream step vs PyTorch
    python3 Tests/Benchmarks/compare.py --mode dream --models /tmp/arch/efficientnetb0.onnx --layers /tmp/arch/efficientnetb0.onnx=/features/features.11/Add

Forward passes are compared with onnxruntime (pip package `onnxruntime`: 2 intra-op threads, spinning off so that
idle worker threads do not steal the CPU from whatever is timed next, all graph optimisations on). DeepDream steps
(roll, forward to the layer, backward of mean(activation²) to the image, normalised update) are compared with
PyTorch, run by `torch_step.py` under the interpreter given by --torch-python (Debian's python3-torch 1.13 lives in
/usr/bin/python3 and needs python3-onnx). Each engine reports the median of --runs timed passes after warm-up; every
round times every case once per engine, alternating which engine goes first, and the table shows medians over
rounds of the times and of the per-round ratios. A model that dream cannot load, or a case that fails in either engine
(a graph with a fixed classifier size run at another size), is skipped with the reason, after the table. Nothing
here is a test: the suite never asserts timings.

The graph both engines run is the one `dream bench --save-onnx` writes, so built-in benchmark graphs
(mobilenetv2-shapes) work too. "% peak" is dream's multiply-accumulate rate against a 2048³ float32 matrix product
through numpy's BLAS with the same thread count, measured at the start of the run.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

DEFAULT_DREAM_LAYERS = {"mobilenetv2-shapes": "features.13.add", "resnet18-shapes": "layer3.1.relu"}


def run_json(command, env=None):
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout)


def first_line(error):
    """What went wrong, in one line: a failed command's last line of stderr, or the first of the exception's message."""
    stderr = (getattr(error, "stderr", None) or "").strip()
    if stderr:
        return stderr.splitlines()[-1]
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def sgemm_peak(threads):
    """GFLOP/s of a float32 2048³ product in a fresh process limited to `threads` BLAS threads."""
    code = ("import numpy as np, time\n"
            "a = np.random.rand(2048, 2048).astype(np.float32); b = np.random.rand(2048, 2048).astype(np.float32)\n"
            "a @ b\nbest = 1e9\n"
            "for _ in range(5):\n    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)\n"
            "print(2 * 2048 ** 3 / best / 1e9)\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    try:
        return float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout)
    except Exception:
        return None


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, threads):
        import numpy
        import onnxruntime
        self.np, self.ort, self.threads = numpy, onnxruntime, threads
        self.sessions = {}

    def session(self, path):
        if path not in self.sessions:
            options = self.ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sessions[path] = self.ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return self.sessions[path]

    def forward_ms(self, path, size, runs, warmup):
        session = self.session(path)
        name = session.get_inputs()[0].name
        x = self.np.random.default_rng(1).uniform(-100, 100, (1, 3, size, size)).astype(self.np.float32)
        for _ in range(warmup):
            session.run(None, {name: x})
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, {name: x})
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)


def dream_forward(args, model, size, binary=None):
    r = run_json([binary or args.dream, "bench", "--model", model, "--size", str(size), "--runs", str(args.runs),
                  "--warmup", str(args.warmup), "--threads", str(args.threads), "--json"])
    return r["forward_ms_median"], r["gmacs"]


def dream_step(args, model, size, layer, binary=None):
    command = [binary or args.dream, "bench", "--dream", "--model", model, "--size", str(size), "--runs", str(args.runs),
               "--warmup", str(args.warmup), "--threads", str(args.threads), "--json"]
    if layer:
        command += ["--layer", layer]
    r = run_json(command)
    return r["dream_step_ms_median"], r["layer"]


def torch_step(args, path, size, layer):
    # OpenMP's worker threads otherwise spin while idle (the counterpart of onnxruntime's allow_spinning = 0); on a
    # busy 2-core machine spinning made the same step 20x slower.
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    r = run_json([args.torch_python, os.path.join(HERE, "torch_step.py"), path, "--size", str(size), "--layer", layer,
                  "--runs", str(args.runs), "--warmup", str(args.warmup), "--threads", str(args.threads)], env=env)
    return r["dream_step_ms_median"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dream", default=os.path.join(ROOT, ".build", "release", "dream"), help="the dream binary")
    parser.add_argument("--before", help="another dream binary (an earlier build) timed in the same rounds")
    parser.add_argument("--models", nargs="+", default=["googlenet", "squeezenet", "mobilenetv2-shapes"],
                        help="known names, benchmark graphs or .onnx paths")
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 512])
    parser.add_argument("--mode", choices=["forward", "dream"], default="forward")
    parser.add_argument("--layer", help="the layer a DeepDream step climbs (--mode dream) for models without a default of their own")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=10, help="timed passes per engine, case and round")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", nargs="+", default=[], metavar="MODEL=LAYER",
                        help="--mode dream: the layer to dream on for a model without a default one")
    parser.add_argument("--torch-python", default="/usr/bin/python3", help="interpreter with torch and onnx (--mode dream)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = parser.parse_args()
    if not os.path.exists(args.dream):
        sys.exit(f"compare.py: {args.dream} not found; build with `swift build -c release` or pass --dream")

    scratch = tempfile.mkdtemp(prefix="dream-bench-")
    try:
        files = {}
        failed = {}  # case (or model, size None) -> why it was skipped
        for model in args.models:
            path = os.path.join(scratch, os.path.basename(model).replace(".onnx", "") + ".onnx")
            try:
                subprocess.run([args.dream, "bench", "--model", model, "--runs", "1", "--warmup", "0", "--size",
                                "224", "--save-onnx", path, "--json"], check=True, capture_output=True, text=True)
                files[model] = path
            except subprocess.CalledProcessError as error:
                failed[(model, None)] = first_line(error)
                print(f"skipping {model}: {failed[(model, None)]}", file=sys.stderr)
        args.models = [m for m in args.models if m in files]
        peak = sgemm_peak(args.threads) if args.mode == "forward" else None
        other = OnnxRuntime(args.threads) if args.mode == "forward" else None
        given = dict(item.split("=", 1) for item in args.layers)
        layers = {m: given.get(m, DEFAULT_DREAM_LAYERS.get(m, args.layer)) for m in args.models}
        cases = [(m, s) for m in args.models for s in args.sizes]
        results = {case: {"ours": [], "theirs": [], "ratio": [], "before": [], "before_ratio": []} for case in cases}
        gmacs = {}
        before_failed = {}  # cases the --before build cannot run: timed without it
        for round_index in range(args.rounds):
            for case_index, (model, size) in enumerate(cases):
                def ours():
                    if args.mode == "forward":
                        ms, gmacs[(model, size)] = dream_forward(args, model, size)
                        return ms
                    ms, layers[model] = dream_step(args, model, size, layers[model])
                    return ms

                def theirs():
                    if args.mode == "forward":
                        return other.forward_ms(files[model], size, args.runs, args.warmup)
                    return torch_step(args, files[model], size, layers[model])

                def before():
                    if not args.before or (model, size) in before_failed:
                        return None
                    try:
                        return timed_before()
                    except subprocess.CalledProcessError as error:  # e.g. an operator the older build lacks
                        before_failed[(model, size)] = first_line(error)
                        print(f"the --before build cannot run {model} at {size}: {before_failed[(model, size)]}", file=sys.stderr)
                        return None

                def timed_before():
                    if args.mode == "forward":
                        return dream_forward(args, model, size, args.before)[0]
                    return dream_step(args, model, size, layers[model], args.before)[0]

                if (model, size) in failed:
                    continue
                try:
                    if (round_index + case_index) % 2 == 0:
                        a = ours(); b = theirs(); c = before()
                    else:
                        c = before(); b = theirs(); a = ours()
                except Exception as error:  # e.g. a graph with a fixed classifier size at another input size
                    failed[(model, size)] = first_line(error)
                    print(f"skipping {model} at {size}: {failed[(model, size)]}", file=sys.stderr)
                    continue
                r = results[(model, size)]
                r["ours"].append(a); r["theirs"].append(b); r["ratio"].append(a / b)
                if c is not None:
                    r["before"].append(c); r["before_ratio"].append(c / b)
                print(f"round {round_index + 1}/{args.rounds} {model} {size}: dream {a:.2f} ms, "
                      f"{'onnxruntime' if args.mode == 'forward' else 'pytorch'} {b:.2f} ms"
                      + (f", before {c:.2f} ms" if c is not None else ""), file=sys.stderr)

        theirs_name = "onnxruntime" if args.mode == "forward" else "PyTorch"
        what = "forward" if args.mode == "forward" else "DeepDream step"
        print(f"\n{what}, {args.threads} threads, median of {args.rounds} interleaved rounds × {args.runs} runs"
              + (f"; sgemm peak {peak:.0f} GFLOP/s" if peak else ""))
        header = (f"| model | size | dream ms | {theirs_name} ms | ratio |" + (" dream GFLOP/s | % peak |" if peak else "")
                  + (" before ms | before ratio |" if args.before else ""))
        print(header)
        print("|" + "---|" * (header.count("|") - 1))
        rows = []
        for (model, size) in cases:
            r = results[(model, size)]
            if not r["ours"]:
                continue
            ours_ms, theirs_ms, ratio = (statistics.median(r[k]) for k in ("ours", "theirs", "ratio"))
            row = {"model": model, "size": size, "dream_ms": ours_ms, "other_ms": theirs_ms, "ratio": ratio,
                   "ratios": r["ratio"], "engine": theirs_name, "mode": args.mode}
            line = f"| {model} | {size} | {ours_ms:.2f} | {theirs_ms:.2f} | {ratio:.2f} |"
            if args.mode == "dream":
                row["layer"] = layers[model]
                line = line.replace(f"| {model} |", f"| {model} ({layers[model]}) |")
            if peak:
                flops = 2 * gmacs[(model, size)] / (ours_ms / 1000)
                row["gflops"] = flops
                row["percent_of_peak"] = 100 * flops / peak
                line += f" {flops:.0f} | {100 * flops / peak:.0f} |"
            if args.before and r["before"]:
                row["before_ms"] = statistics.median(r["before"])
                row["before_ratio"] = statistics.median(r["before_ratio"])
                line += f" {row['before_ms']:.2f} | {row['before_ratio']:.2f} |"
            elif args.before:
                line += " — | — |"
            rows.append(row)
            print(line)
        for (model, size), why in failed.items():
            print(f"skipped: {model}" + (f" at {size}" if size else "") + f": {why}")
        for (model, size), why in before_failed.items():
            print(f"not run by the --before build: {model} at {size}: {why}")
        if args.json:
            print(json.dumps({"sgemm_peak_gflops": peak, "rows": rows,
                              "skipped": [{"model": m, "size": z, "error": w} for (m, z), w in failed.items()]}, indent=1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
