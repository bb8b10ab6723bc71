#!/usr/bin/env python3
"""The PyTorch peer of examples/beijing.gatelab.yaml (issue 19): Gatelab's multivariate forecast
pipeline written out in PyTorch, to compare validation RMSE.

The pipeline, as Gatelab's forecast task (src/engine/tasks/forecast.ts, src/engine/data/frame.ts):
  - read the columns pm2.5, DEWP, TEMP, PRES, cbwd, Iws, Is, Ir of examples/data/beijing-pm25.csv;
    a cell is missing when it is empty or NA; missing: previous fills it from the last value, a
    leading gap from the first value that follows;
  - the last round(0.2·n) rows are validation; the training part is the first n − round(0.2·n);
  - every numeric input column is z-scored with the training part (population std), the target
    pm2.5 likewise (its own input is its z-score); cbwd is one-hot with its categories sorted;
  - a window is 24 rows of the 11 features; the target the next row's pm2.5 (z-scored); training
    windows have their target in the training part, validation windows in the validation part;
  - the model: nn.LSTM(11, 32), the last step's h through nn.Linear(32, 1); MSE loss; Adam lr 1e-3;
    gradient clipping at global norm 1; batches of 64, the training windows shuffled each epoch and
    the last incomplete batch left out; PyTorch's default initialisation.
Reports the validation RMSE and MAE in µg/m³ after each epoch and the persistence baseline (the last
hour repeated), as one JSON line per seed.

  /usr/bin/python3 bench/torch_forecast.py [--epochs 8] [--seeds 1,2,3] [--threads 2]
"""
import argparse, csv, json, math, os, sys

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, '..', 'examples', 'data', 'beijing-pm25.csv')
COLUMNS = ['pm2.5', 'DEWP', 'TEMP', 'PRES', 'cbwd', 'Iws', 'Is', 'Ir']
TARGET = 'pm2.5'
CATEGORICAL = ['cbwd']
W, N, VALID = 24, 1, 0.2


def fill_previous(a):
    first = next((i for i, v in enumerate(a) if v is not None), None)
    if first is None:
        return [0.0] * len(a)
    out = list(a)
    for i in range(first):
        out[i] = out[first]
    for i in range(first + 1, len(out)):
        if out[i] is None:
            out[i] = out[i - 1]
    return out


def load():
    with open(CSV, newline='') as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    header = [h.strip().lstrip('#').strip() for h in rows[0]]
    cols = {}
    for c in COLUMNS:
        j = header.index(c)
        cells = [r[j].strip() for r in rows[1:]]
        if c in CATEGORICAL:
            cols[c] = fill_previous([None if x in ('', 'NA') else x for x in cells])
        else:
            cols[c] = fill_previous([None if x in ('', 'NA') else float(x) for x in cells])
    return cols


def features(cols):
    n = len(cols[TARGET])
    n_train = n - round(n * VALID)
    z = {}
    stats = {}
    for c in COLUMNS:
        if c in CATEGORICAL:
            continue
        a = torch.tensor(cols[c], dtype=torch.float64)
        m = a[:n_train].mean()
        s = a[:n_train].std(unbiased=False)
        s = s if s > 0 else torch.tensor(1.0, dtype=torch.float64)
        z[c] = (a - m) / s
        stats[c] = (m.item(), s.item())
    parts = []
    for c in COLUMNS:
        if c in CATEGORICAL:
            cats = sorted(set(cols[c]) - {''})
            parts.append(torch.tensor([[1.0 if v == k else 0.0 for k in cats] for v in cols[c]], dtype=torch.float64))
        else:
            parts.append(z[c].unsqueeze(1))
    return torch.cat(parts, 1).float(), z[TARGET].float(), stats[TARGET], torch.tensor(cols[TARGET], dtype=torch.float64), n_train


class Net(nn.Module):
    def __init__(self, F, H):
        super().__init__()
        self.lstm = nn.LSTM(F, H)
        self.fc = nn.Linear(H, N)

    def forward(self, x):  # x [T, B, F]
        _, (h, _) = self.lstm(x)
        return self.fc(h[-1])


def batch(X, starts):
    idx = torch.tensor(starts)
    steps = idx.unsqueeze(0) - W + torch.arange(W).unsqueeze(1)  # [W, B]
    return X[steps]  # [W, B, F]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--epochs', type=int, default=8)
    ap.add_argument('--seeds', default='42')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cols = load()
    X, zt, (mean, std), series, n_train = features(cols)
    n = len(series)
    train_starts = list(range(W, n_train - N + 1))
    valid_starts = list(range(max(n_train, W), n - N + 1))
    truth = series[valid_starts]
    persistence = series[[t - 1 for t in valid_starts]]
    base_rmse = math.sqrt(((persistence - truth) ** 2).mean().item())
    Xv = batch(X, valid_starts)
    for seed in [int(s) for s in a.seeds.split(',')]:
        torch.manual_seed(seed)
        net = Net(X.shape[1], 32)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        B = 64
        per_epoch = len(train_starts) // B
        curve = []
        for epoch in range(a.epochs):
            order = torch.randperm(len(train_starts)).tolist()
            net.train()
            for i in range(per_epoch):
                s = [train_starts[j] for j in order[i * B:(i + 1) * B]]
                x = batch(X, s)
                y = zt[torch.tensor(s)].unsqueeze(1)
                opt.zero_grad()
                loss = ((net(x) - y) ** 2).mean()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
            net.eval()
            with torch.no_grad():
                pred = net(Xv)[:, 0].double() * std + mean
            rmse = math.sqrt(((pred - truth) ** 2).mean().item())
            mae = (pred - truth).abs().mean().item()
            curve.append({'epoch': epoch + 1, 'rmse': rmse, 'mae': mae})
            print(f'seed {seed} epoch {epoch + 1}: rmse {rmse:.3f} mae {mae:.3f}', file=sys.stderr)
        print(json.dumps({'seed': seed, 'torch': torch.__version__, 'rows': n, 'trainWindows': len(train_starts), 'validWindows': len(valid_starts),
                          'features': X.shape[1], 'rmse': curve[-1]['rmse'], 'mae': curve[-1]['mae'], 'bestRmse': min(c['rmse'] for c in curve),
                          'baselineRmse': base_rmse, 'curve': curve}))


if __name__ == '__main__':
    main()
