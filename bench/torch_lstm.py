#!/usr/bin/env python3
"""The PyTorch peer of `gatelab bench` C1-C3, timed on the same device in the same call (issue 5).

C1: char LM, V=28 one-hot, LSTM H=256, B=32, T=35, Linear, cross-entropy, SGD lr 1 + clip 1.
C2/C3: one LSTM layer I=H=512/1024, B=64, T=100, loss = mean(h * r), SGD + clip 1 (the same
       program as bench.ts's denseTrainProgram).
Each: forward, backward and update of one batch; warm-up, then the median of timed steps with
torch.cuda.synchronize(). Prints one JSON line: {"torch":..., "cudnn":..., "tf32":..., "results":[...]}.

  python3 bench/torch_lstm.py --device cuda [--tf32] [--only C1,C3]
"""
import argparse, json, statistics, time
import torch


def time_steps(step, sync, min_runs=10, min_s=2.0):
    for _ in range(3):
        step()
    sync()
    ts = []
    t_end = time.perf_counter() + min_s
    while len(ts) < min_runs or time.perf_counter() < t_end:
        t = time.perf_counter()
        step()
        sync()
        ts.append((time.perf_counter() - t) * 1000)
        if len(ts) >= 200:
            break
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in cuBLAS and cuDNN (default: off, fp32)")
    ap.add_argument("--only", default="C1,C2,C3")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    only = a.only.upper().split(",")
    results = []

    if "C1" in only:
        V, H, B, T = 28, 256, 32, 35
        lstm = torch.nn.LSTM(V, H).to(dev)
        fc = torch.nn.Linear(H, V).to(dev)
        params = list(lstm.parameters()) + list(fc.parameters())
        opt = torch.optim.SGD(params, lr=1.0)
        x = torch.randint(0, V, (T, B), device=dev)
        y = torch.randint(0, V, (T, B), device=dev)
        state = (torch.zeros(1, B, H, device=dev), torch.zeros(1, B, H, device=dev))

        def step():
            opt.zero_grad(set_to_none=True)
            out, _ = lstm(torch.nn.functional.one_hot(x, V).float(), state)
            loss = torch.nn.functional.cross_entropy(fc(out).reshape(-1, V), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()

        ms = time_steps(step, sync)
        results.append({"id": "C1", "msPerStep": ms, "tokensPerSecond": B * T * 1000 / ms})

    for cid, H in (("C2", 512), ("C3", 1024)):
        if cid not in only:
            continue
        I, B, T = H, 64, 100
        lstm = torch.nn.LSTM(I, H).to(dev)
        params = list(lstm.parameters())
        opt = torch.optim.SGD(params, lr=0.01)
        x = torch.randn(T, B, I, device=dev)
        r = torch.randn(T, B, H, device=dev)

        def step():
            opt.zero_grad(set_to_none=True)
            out, _ = lstm(x)
            loss = (out * r).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()

        ms = time_steps(step, sync)
        results.append({"id": cid, "msPerStep": ms, "tokensPerSecond": B * T * 1000 / ms})

    print(json.dumps({
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
        "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "tf32": a.tf32,
        "results": results,
    }))


if __name__ == "__main__":
    main()
