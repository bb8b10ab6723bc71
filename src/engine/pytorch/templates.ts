// The Python sources of the PyTorch job that `gatelab export FILE --pytorch DIR` writes (./job.ts),
// kept here as text so that the CLI bundle carries them. They are plain Python: model.py (the model
// as nn.Modules under Gatelab's names), data.py (Gatelab's tokens, minibatches and generator),
// train.py (the loop, DDP under torchrun, the Gatelab run record), st.py (safetensors files).

export const MODEL_PY = String.raw`"""The model of the exported job, as Gatelab builds it (src/engine/nn/lm.ts): tokens -> one-hot or
nn.Embedding -> the recurrent layers, each its own single-layer nn.LSTM / nn.GRU / nn.RNN (so that
cuDNN runs them and layers may differ in size) -> dropout between layers and before the output ->
nn.Linear -> logits. Parameters are saved and loaded under Gatelab's (PyTorch's stacked) names:
lstm.weight_ih_l{k}, gru.*_l{k}, rnn.*_l{k}, embedding.weight, fc.weight, fc.bias."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

_CELLS = {'lstm': nn.LSTM, 'gru': nn.GRU, 'rnn': nn.RNN}


def stack(cfg, inp):
    """The recurrent layers, each a single-layer nn.LSTM / nn.GRU / nn.RNN (an explicit cell for
    the LSTM variants PyTorch lacks), and the width of the last."""
    layers = []
    for l in cfg['layers']:
        if l['type'] == 'cell':
            layers.append(EquationCell(inp, l))
        elif l['type'] == 'gru' and l.get('gateActivation', 'sigmoid') != 'sigmoid':
            layers.append(HardGRU(inp, l))
        elif l['type'] == 'lstm' and (l.get('peepholes') or l.get('coupledGates') or l.get('cellClip', 0) > 0 or l.get('gateActivation', 'sigmoid') != 'sigmoid'):
            layers.append(VariantLSTM(inp, l))
        else:
            extra = {'nonlinearity': l.get('activation', 'tanh')} if l['type'] == 'rnn' else {}
            layers.append(_CELLS[l['type']](inp, l['hidden'], bidirectional=bool(l.get('bidirectional')), **extra))
        inp = l['hidden'] * (2 if l.get('bidirectional') else 1)
    return nn.ModuleList(layers), inp


class EquationCell(nn.Module):
    """A Gatelab equation cell (type: cell; src/engine/nn/cellspec.ts), step by step: its equations,
    as Gatelab parsed them (config.json holds their trees), evaluated top to bottom at every step.
    Parameters cell.l{k}.<equation>.<name>: matrices [H, width of the operand], vectors [H], all
    U(-1/sqrt(H), 1/sqrt(H)) then the cell's init constants; called as nn.LSTM is (state: h, or
    (h, the other state))."""

    def __init__(self, inp, l):
        super().__init__()
        H = l['hidden']
        c = l['cell']
        self.hidden_size = H
        self.states = c['states']
        self.two_states = len(self.states) > 1
        self.equations = c['equations']
        k = 1 / math.sqrt(H)
        self.P = nn.ParameterDict()
        for p in c['params']:
            shape = (H, inp if p['width'] == 'in' else H) if p['kind'] == 'matrix' else (H,)
            t = torch.empty(*shape).uniform_(-k, k)
            if p['key'] in c.get('init', {}):
                t.fill_(c['init'][p['key']])
            self.P[p['key'].replace('.', '__')] = nn.Parameter(t)

    def named_gatelab(self, k):
        return {f'cell.l{k}.{key.replace("__", ".", 1)}': p for key, p in self.P.items()}

    def ev(self, e, eq, env, prev, x):
        kind = e['k']
        if kind == 'num':
            return e['v']
        if kind == 'ref':
            return x if e['ref'] == 'x' else prev[e['name']] if e['ref'] == 'prev' else env[e['name']]
        if kind == 'param':
            return self.P[eq + '__' + e['name']]
        if kind == 'mat':
            return self.ev(e['arg'], eq, env, prev, x) @ self.P[eq + '__' + e['name']].t()
        if kind == 'neg':
            return -self.ev(e['a'], eq, env, prev, x)
        if kind == 'bin':
            a, b = self.ev(e['a'], eq, env, prev, x), self.ev(e['b'], eq, env, prev, x)
            return a + b if e['op'] == '+' else a - b if e['op'] == '-' else a * b
        z = self.ev(e['args'][0], eq, env, prev, x)
        fn = e['fn']
        if fn == 'sigmoid':
            return torch.sigmoid(z)
        if fn == 'tanh':
            return torch.tanh(z)
        if fn == 'relu':
            return torch.relu(z)
        if fn == 'softsign':
            return z / (1 + torch.abs(z))
        slope = self.ev(e['args'][1], eq, env, prev, x) if len(e['args']) > 1 else 0.2
        offset = self.ev(e['args'][2], eq, env, prev, x) if len(e['args']) > 2 else 0.5
        return torch.clamp(slope * z + offset, 0.0, 1.0)

    def forward(self, x, state=None):
        T, B, _ = x.shape
        H = self.hidden_size
        if state is None:
            first = [x.new_zeros(B, H) for _ in self.states]
        else:
            first = [state[0][0], state[1][0]] if self.two_states else [state[0]]
        # Gatelab's order of the states: h first, the other second
        order = ['h'] + [s for s in self.states if s != 'h']
        prev = dict(zip(order, first))
        outs = []
        for t in range(T):
            env = {}
            for q in self.equations:
                env[q['name']] = self.ev(q['expr'], q['name'], env, prev, x[t])
            prev = {s: env[s] for s in order}
            outs.append(env['h'])
        last = [prev[s].unsqueeze(0) for s in order]
        return torch.stack(outs), (tuple(last) if self.two_states else last[0])


def _gate_weights(m, inp, H, blocks):
    """nn.LSTM's / nn.GRU's four parameters on module m (U(-1/sqrt(H), 1/sqrt(H))); returns the initialiser."""
    k = 1 / math.sqrt(H)
    u = lambda *shape: nn.Parameter(torch.empty(*shape).uniform_(-k, k))
    m.hidden_size = H
    m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0 = u(blocks * H, inp), u(blocks * H, H), u(blocks * H), u(blocks * H)
    return u


def _gate_act(l):
    """The gates' nonlinearity: the logistic sigmoid, or Gatelab's hard sigmoid max(0, min(1, slope*z + offset))."""
    if l.get('gateActivation', 'sigmoid') != 'hard-sigmoid':
        return torch.sigmoid
    slope, offset = l.get('hardSigmoidSlope', 0.2), l.get('hardSigmoidOffset', 0.5)
    return lambda z: torch.clamp(slope * z + offset, 0.0, 1.0)


class HardGRU(nn.Module):
    """nn.GRU with hard-sigmoid r and z gates (Gatelab's gruCell: max(0, min(1, slope*z + offset))),
    step by step; parameters and calling as nn.GRU's (gate order r, z, n)."""

    def __init__(self, inp, l):
        super().__init__()
        _gate_weights(self, inp, l['hidden'], 3)
        self.act = _gate_act(l)

    def forward(self, x, state=None):
        T, B, _ = x.shape
        h = state[0] if state is not None else x.new_zeros(B, self.hidden_size)
        xw = x @ self.weight_ih_l0.t() + self.bias_ih_l0
        outs = []
        for t in range(T):
            xr, xz, xn = xw[t].chunk(3, 1)
            hr, hz, hn = (h @ self.weight_hh_l0.t() + self.bias_hh_l0).chunk(3, 1)
            r, z = self.act(xr + hr), self.act(xz + hz)
            n = torch.tanh(xn + r * hn)
            h = n + z * (h - n)
            outs.append(h)
        return torch.stack(outs), h.unsqueeze(0)


class VariantLSTM(nn.Module):
    """Gatelab's LSTM variants (src/engine/nn/lstm.ts, lstmCell), step by step: peepholes (i and f
    see c(t-1), o sees c(t), as the ONNX operator), coupled gates (f = 1 - i), hard-sigmoid gates
    max(0, min(1, slope*z + offset)), cell clipping (every gate input clipped to [-clip, clip],
    peephole terms included). Parameters as nn.LSTM's (gate order i, f, g, o) and
    weight_peephole_l0 [3, H] (i, f, o); called as nn.LSTM is."""

    def __init__(self, inp, l):
        super().__init__()
        H = l['hidden']
        u = _gate_weights(self, inp, H, 4)
        self.weight_peephole_l0 = u(3, H) if l.get('peepholes') else None
        self.coupled = bool(l.get('coupledGates'))
        self.clip = l.get('cellClip', 0)
        self.act = _gate_act(l)

    def forward(self, x, state=None):
        T, B, _ = x.shape
        H = self.hidden_size
        h, c = (state[0][0], state[1][0]) if state is not None else (x.new_zeros(B, H), x.new_zeros(B, H))
        clip = (lambda v: torch.clamp(v, -self.clip, self.clip)) if self.clip > 0 else (lambda v: v)
        xw = x @ self.weight_ih_l0.t() + self.bias_ih_l0 + self.bias_hh_l0
        p = self.weight_peephole_l0
        outs = []
        for t in range(T):
            zi, zf, zg, zo = (xw[t] + h @ self.weight_hh_l0.t()).chunk(4, 1)
            if p is None:
                i, f, o = self.act(clip(zi)), self.act(clip(zf)), self.act(clip(zo))
                if self.coupled:
                    f = 1 - i
                c = f * c + i * torch.tanh(clip(zg))
            else:
                i = self.act(clip(zi + p[0] * c))
                f = 1 - i if self.coupled else self.act(clip(zf + p[1] * c))
                c = f * c + i * torch.tanh(clip(zg))
                o = self.act(clip(zo + p[2] * c))
            h = o * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), (h.unsqueeze(0), c.unsqueeze(0))


class TokenNet(nn.Module):
    """Tokens -> one-hot or nn.Embedding -> the layers -> (dropout) -> nn.Linear to "outputs"."""

    def __init__(self, cfg, outputs):
        super().__init__()
        # numeric sequences: F features per step read as they are (no vocabulary, no embedding)
        self.features = cfg.get('features')
        self.vocab = 0 if self.features else len(cfg['vocab'])
        self.kinds = [l['type'] for l in cfg['layers']]
        E = 0 if self.features else cfg['embedding']
        self.embedding = nn.Embedding(self.vocab, E) if E > 0 else None
        self.layers, inp = stack(cfg, self.features or (E if E > 0 else self.vocab))
        self.drop = nn.Dropout(cfg['dropout'])
        self.fc = nn.Linear(inp, outputs)

    def embed(self, x):
        if self.features:
            return x
        return self.embedding(x) if self.embedding is not None else F.one_hot(x, self.vocab).to(self.fc.weight.dtype)

    def gatelab_names(self):
        """Gatelab's (and PyTorch's stacked) name of every parameter."""
        out = {}
        if self.embedding is not None:
            out['embedding.weight'] = self.embedding.weight
        for k, (kind, l) in enumerate(zip(self.kinds, self.layers)):
            if kind == 'cell':
                out.update(l.named_gatelab(k))
                continue
            for sfx in ['', '_reverse'] if getattr(l, 'bidirectional', False) else ['']:
                for n in ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']:
                    out[f'{kind}.{n}_l{k}{sfx}'] = getattr(l, f'{n}_l0{sfx}')
            if getattr(l, 'weight_peephole_l0', None) is not None:
                out[f'lstm.weight_peephole_l{k}'] = l.weight_peephole_l0
        out['fc.weight'] = self.fc.weight
        out['fc.bias'] = self.fc.bias
        return out



class LanguageModel(TokenNet):
    def __init__(self, cfg):
        super().__init__(cfg, len(cfg['vocab']))

    def zero_state(self, B, device):
        return [(torch.zeros(1, B, l.hidden_size, device=device), torch.zeros(1, B, l.hidden_size, device=device)) if getattr(l, 'two_states', kind == 'lstm') else torch.zeros(1, B, l.hidden_size, device=device) for kind, l in zip(self.kinds, self.layers)]

    def forward(self, x, state):
        """x [T, B] token ids; state per layer ((h, c) or h, [1, B, H]) -> logits [T*B, V], new state."""
        inp = self.embed(x)
        new = []
        for k, l in enumerate(self.layers):
            inp, s = l(inp, state[k])
            new.append(s)
            inp = self.drop(inp)
        return self.fc(inp.reshape(-1, inp.shape[-1])), new


def detach(state):
    return [tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach() for s in state]


class Forecaster(nn.Module):
    """Gatelab's forecaster (src/engine/train/forecast.ts): the layers over F input features, the
    last layer's final state through dropout and nn.Linear to the next horizon values."""

    def __init__(self, cfg):
        super().__init__()
        self.kinds = [l['type'] for l in cfg['layers']]
        self.layers, inp = stack(cfg, cfg['features'])
        self.drop = nn.Dropout(cfg['dropout'])
        self.fc = nn.Linear(inp, cfg['horizon'])

    gatelab_names = TokenNet.gatelab_names
    embedding = None

    def forward(self, x):
        """x [T, B, F] -> [B, horizon]."""
        inp = x
        for k, l in enumerate(self.layers):
            inp, s = l(inp)
            h = s[0] if isinstance(s, tuple) else s
            if k < len(self.layers) - 1:
                inp = self.drop(inp)
        # PyTorch's h_n: [h_fwd at the last step, h_bwd at step 0] for a bidirectional layer, as Gatelab's
        return self.fc(self.drop(torch.cat([h[-2], h[-1]], 1) if getattr(self.layers[-1], 'bidirectional', False) else h[-1]))


class Classifier(TokenNet):
    """Gatelab's sentence classifier (src/engine/train/classify.ts): one-hot or nn.Embedding, the
    layers, the hidden state at each sentence's last real step ('last') or the mean over its real
    steps ('mean'), dropout, nn.Linear to the classes. Padding never counts."""

    def __init__(self, cfg):
        super().__init__(cfg, len(cfg['classes']))
        self.pooling = cfg['pooling']

    def forward(self, x, mask, last):
        """x [T, B] ids, mask [T, B] (1 on real steps), last [B] (each sentence's last real step) -> logits [B, C]."""
        inp = self.embed(x)
        bi = any(getattr(l, 'bidirectional', False) for l in self.layers)
        lengths = (last + 1).cpu()
        for k, l in enumerate(self.layers):
            if bi:
                # packed: a reverse direction reads each sentence from its own last real step, as Gatelab's
                packed, _ = l(nn.utils.rnn.pack_padded_sequence(inp, lengths, enforce_sorted=False))
                inp, _ = nn.utils.rnn.pad_packed_sequence(packed, total_length=x.shape[0])
            else:
                inp, _ = l(inp)
            if k < len(self.layers) - 1:
                inp = self.drop(inp)
        rows = torch.arange(inp.shape[1], device=inp.device)
        if self.pooling == 'last' and getattr(self.layers[-1], 'bidirectional', False):
            H = self.layers[-1].hidden_size
            pooled = torch.cat([inp[last, rows, :H], inp[0, :, H:]], 1)
        elif self.pooling == 'last':
            pooled = inp[last, rows]
        else:
            m = mask.unsqueeze(2)
            pooled = (inp * m).sum(0) / m.sum(0)
        return self.fc(self.drop(pooled))
`;

export const DATA_PY = String.raw`"""The data pipeline of the exported job, as Gatelab's (src/engine/data/text.ts, batches.ts):
the same tokens, vocabulary (from config.json), validation tail and minibatches, drawn with
Gatelab's generator (xoshiro128** seeded through splitmix32, src/engine/util/rng.ts), so a job
started from the same checkpoint with the same seed trains on the same minibatches in the same order.
"""
import math
import re

M32 = 0xFFFFFFFF


def _rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


class Rng:
    """Gatelab's Rng: xoshiro128**, seeded through splitmix32."""

    def __init__(self, seed):
        x = seed & M32
        self.s = [0, 0, 0, 0]
        for i in range(4):
            x = (x + 0x9E3779B9) & M32
            z = x
            z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
            z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
            self.s[i] = (z ^ (z >> 16)) & M32

    def next_u32(self):
        s = self.s
        result = (_rotl((s[1] * 5) & M32, 7) * 9) & M32
        t = (s[1] << 9) & M32
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 11)
        return result

    def next(self):
        hi = self.next_u32() >> 5
        lo = self.next_u32() >> 6
        return (hi * 67108864 + lo) / 9007199254740992

    def int(self, lo, hi):
        return lo + int(math.floor(self.next() * (hi - lo + 1)))

    def shuffle(self, a):
        for i in range(len(a) - 1, 0, -1):
            j = int(math.floor(self.next() * (i + 1)))
            a[i], a[j] = a[j], a[i]


def tokens_of(text, kind, preprocess):
    """Gatelab's tokens: "letters" cleans each line (runs of non-letters -> one space, strip, lower
    case) and joins the lines without a separator (d2l); words split on whitespace."""
    if preprocess == 'letters':
        lines = [re.sub(r'[^A-Za-z]+', ' ', line).strip().lower() for line in text.split('\n')]
        if kind == 'char':
            return list(''.join(lines))
        return [w for line in lines for w in line.split()]
    return list(text) if kind == 'char' else text.split()


def load_ids(cfg):
    """The corpus's token ids with the vocabulary of config.json (unknown tokens: <unk>, id 0)."""
    with open(cfg['source'], encoding='utf-8') as f:
        text = f.read()
    index = {t: i for i, t in enumerate(cfg['vocab'])}
    return [index.get(t, 0) for t in tokens_of(text, cfg['tokens'], cfg['preprocess'])]


def split_tail(ids, fraction):
    """The first (1 - fraction) for training, the rest held out (rounded as JavaScript's Math.round)."""
    if fraction <= 0:
        return ids, []
    cut = int(math.floor(len(ids) * (1 - fraction) + 0.5))
    return ids[:cut], ids[cut:]


class Epoch:
    """count batches of B rows x T steps; batch(k) -> (x, y) as lists [T][B]; contiguous: row b of batch k+1 continues row b of batch k."""

    def __init__(self, ids, B, T, count, contiguous, start):
        self.ids, self.B, self.T, self.count, self.contiguous, self.start = ids, B, T, count, contiguous, start

    def batch(self, k):
        ids, B, T = self.ids, self.B, self.T
        starts = [self.start(k, b) for b in range(B)]
        x = [[ids[starts[b] + t] for b in range(B)] for t in range(T)]
        y = [[ids[starts[b] + t + 1] for b in range(B)] for t in range(T)]
        return x, y


def sequential_epoch(ids, B, T, rng):
    """d2l seq_data_iter_sequential: a random offset in [0, T], B rows, batches of T consecutive columns."""
    offset = rng.int(0, T)
    num = ((len(ids) - offset - 1) // B) * B
    row = num // B
    return Epoch(ids, B, T, max(0, row // T), True, lambda k, b: offset + b * row + k * T)


def random_epoch(ids, B, T, rng):
    """d2l seq_data_iter_random: a random offset in [0, T-1], subsequences of T shuffled, B per batch."""
    offset = rng.int(0, T - 1)
    n = max(0, (len(ids) - offset - 1) // T)
    order = list(range(n))
    rng.shuffle(order)
    return Epoch(ids, B, T, n // B, False, lambda k, b: offset + order[k * B + b] * T)


def validation_batches(ids, B, T):
    """The held-out tail cut into as many rows as fit (at most B), without an offset."""
    rows = max(1, min(B, (len(ids) - 1) // T))
    row = (len(ids) - 1) // rows
    return Epoch(ids, rows, T, row // T, True, lambda k, b: b * row + k * T)


# ---- forecasts: a CSV's columns as Gatelab's forecast task reads them (src/engine/tasks/forecast.ts) ----

def header_name(h):
    """A header cell as a name: trimmed, a leading # ignored."""
    h = h.strip()
    return h[1:].strip() if h.startswith('#') else h


def _fill_previous(a):
    first = next((i for i, v in enumerate(a) if v is not None), None)
    if first is None:
        return [0.0 if not isinstance(v, str) else '' for v in a]
    out = list(a)
    for i in range(first):
        out[i] = out[first]
    for i in range(first + 1, len(out)):
        if out[i] is None:
            out[i] = out[i - 1]
    return out


def load_frame(path, columns, categorical, missing):
    """The columns of a CSV with a header; missing cells (empty or NA) as data.missing says."""
    import csv
    with open(path, newline='', encoding='utf-8-sig') as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    header = [header_name(h) for h in rows[0]]
    columns = list(header) if columns is None else columns
    idx = []
    for c in columns:
        if c not in header:
            raise SystemExit(f'{path} has no column "{c}" (its columns: {", ".join(header)})')
        idx.append(header.index(c))
    cols = {c: [] for c in columns}
    for line, r in enumerate(rows[1:], start=2):
        cells = [(r[i] if i < len(r) else '').strip() for i in idx]
        gone = [x in ('', 'NA') for x in cells]
        if missing == 'drop' and any(gone):
            continue
        for c, x, g in zip(columns, cells, gone):
            if g:
                if missing == 'error':
                    raise SystemExit(f'{path}:{line}: column "{c}" has no value (data.missing: error)')
                cols[c].append(('' if c in categorical else 0.0) if missing == 'zero' else None)
            else:
                cols[c].append(x if c in categorical else float(x))
    return {c: _fill_previous(v) for c, v in cols.items()}


def transformed(series, transform):
    """The series the model sees before normalisation, and the first position with a value."""
    lg = [math.log(v) for v in series] if transform in ('log', 'log-difference') else list(series)
    if transform in ('difference', 'log-difference'):
        return [0.0] + [lg[i] - lg[i - 1] for i in range(1, len(lg))], 1
    return lg, 0


def inverse(series, transform, mean, std, z, t):
    """Forecasts in the series' units: z (normalised) for targets t..t+N-1."""
    out, acc = [], 0.0
    for zh in z:
        u = zh * std + mean
        if transform == 'none':
            out.append(u)
        elif transform == 'log':
            out.append(math.exp(u))
        else:
            acc += u
            out.append(series[t - 1] + acc if transform == 'difference' else series[t - 1] * math.exp(acc))
    return out


class ForecastData:
    """The target split, the inputs of every row (features: numeric columns z-scored with the
    training part, categorical ones one-hot with sorted categories, the target its transformed z),
    and the windows of W rows whose next N target values are the examples."""

    def __init__(self, cfg):
        cols, target, cat = cfg['columns'], cfg['target'], cfg['categorical']
        frame = load_frame(cfg['source'], list(dict.fromkeys(cols + [target])), cat, cfg['missing'])
        self.series = frame[target]
        n = len(self.series)
        W, N = cfg['window'], cfg['horizon']
        self.W, self.N = W, N
        self.n_train = n - int(math.floor(n * cfg['validation'] + 0.5))
        self.transform = cfg['transform']
        u, first = transformed(self.series, self.transform)
        self.u, self.first = u, first
        part = u[first:self.n_train]
        self.mean = sum(part) / len(part)
        self.std = math.sqrt(sum((v - self.mean) ** 2 for v in part) / len(part)) or 1.0
        z = [(v - self.mean) / self.std for v in u]
        feats = []
        for c in cols:
            if c in cat:
                cats = sorted(set(frame[c]) - {''})
                feats.append([[1.0 if v == k else 0.0 for k in cats] for v in frame[c]])
            elif c == target:
                feats.append([[v] for v in z])
            else:
                a = frame[c][: self.n_train]
                m = sum(a) / len(a)
                s = math.sqrt(sum((v - m) ** 2 for v in a) / len(a)) or 1.0
                feats.append([[(v - m) / s] for v in frame[c]])
        self.x = [sum((f[i] for f in feats), []) for i in range(n)]
        self.F = len(self.x[0])
        self.z = z
        self.train_starts = [i + W + first for i in range(self.n_train - W - N + 1 - first)]
        self.valid_starts = list(range(max(self.n_train, W + first), n - N + 1))

    def windows(self, starts):
        """x [W][B][F] and y [B][N] (normalised)."""
        x = [[self.x[t - self.W + w] for t in starts] for w in range(self.W)]
        y = [[self.z[t + h] for h in range(self.N)] for t in starts]
        return x, y


# ---- classification of sentences (src/engine/data/labelled.ts, tasks/classification.ts) ----

def load_labelled(cfg):
    """(token lists, labels): TSV lines sentence<TAB>label (the label after the last tab, quotes part
    of the sentence) or CSV files with a header and data.textColumn / data.labelColumn; sentences
    with no tokens are left out."""
    import csv
    examples = []
    for path in cfg['sources']:
        with open(path, newline='', encoding='utf-8-sig') as f:
            if path.lower().endswith('.csv'):
                rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
                header = [h.strip() for h in rows[0]]
                ti, li = header.index(cfg['textColumn']), header.index(cfg['labelColumn'])
                pairs = [(r[ti], r[li]) for r in rows[1:]]
            else:
                rows = [r for r in csv.reader(f, delimiter='\t', quoting=csv.QUOTE_NONE) if any(c.strip() for c in r)]
                pairs = [('\t'.join(r[:-1]), r[-1]) for r in rows]
        for sentence, label in pairs:
            toks = tokens_of(sentence, cfg['tokens'], cfg['preprocess'])
            if toks:
                examples.append((toks, label.strip()))
    return examples


def _table(path, id_col, other_col, other_default):
    """(id, value) rows of a table with a header (names trimmed, a leading # ignored)."""
    import csv
    with open(path, newline='', encoding='utf-8-sig') as f:
        rows = [r for r in csv.reader(f) if any(c.strip() for c in r)]
    header = [header_name(h) for h in rows[0]]
    i = header.index(id_col) if id_col else 0
    j = header.index(other_col) if other_col else other_default
    return [(r[i].strip(), r[j].strip()) for r in rows[1:]]


def _class_order(labels):
    """Gatelab's order of classes: numerically when every label is a number, else as text."""
    def num(v):
        try:
            return math.isfinite(float(v))
        except ValueError:
            return False
    uniq = sorted(set(labels))
    return sorted(uniq, key=float) if all(num(v) for v in uniq) else uniq


def load_sequences(cfg):
    """(ids, per-sequence steps [T_i][F], labels, columns): one CSV per sequence (data.sequences with
    {id}, labels from data.labels) or one long CSV (data.idColumn; labels from data.labels or
    data.labelColumn), as src/engine/data/sequences.ts reads them."""
    cols = cfg.get('columns')
    out_ids, steps, labels = [], [], []
    if cfg.get('sequences'):
        lab = cfg['labels']
        table = _table(lab['file'], lab.get('id'), lab.get('label'), 1)
        columns = None
        for sid, label in table:
            frame = load_frame(cfg['sequences'].replace('{id}', sid), cols, [], cfg['missing'])
            columns = list(frame.keys())
            n = len(frame[columns[0]])
            out_ids.append(sid)
            labels.append(label)
            steps.append([[frame[c][t] for c in columns] for t in range(n)])
        return out_ids, steps, labels, columns
    id_col = cfg['idColumn']
    label_col = None if cfg.get('labels') else cfg.get('labelColumn')
    text = [id_col] + ([label_col] if label_col else [])
    frame = load_frame(cfg['source'], (cols + text) if cols else None, text, cfg['missing'])
    columns = cols or [c for c in frame if c not in text]
    table = dict(_table(cfg['labels']['file'], cfg['labels'].get('id'), cfg['labels'].get('label'), 1)) if cfg.get('labels') else None
    groups = {}
    for r, sid in enumerate(frame[id_col]):
        groups.setdefault(sid, []).append(r)
    for sid, rows in groups.items():
        out_ids.append(sid)
        labels.append(table[sid] if table is not None else frame[label_col][rows[0]])
        steps.append([[frame[c][r] for c in columns] for r in rows])
    return out_ids, steps, labels, columns


def build_vocab(token_lists, min_frequency):
    """d2l's order: <unk>, then by descending count, ties in order of first appearance."""
    counts = {}
    for toks in token_lists:
        for t in toks:
            counts[t] = counts.get(t, 0) + 1
    kept = [(t, c) for t, c in counts.items() if c >= min_frequency and t != '<unk>']
    kept.sort(key=lambda e: -e[1])
    return ['<unk>'] + [t for t, _ in kept]
`;

export const TRAIN_PY = String.raw`#!/usr/bin/env python3
"""The training job of a Gatelab model (a language model or a forecaster), exported by 'gatelab export FILE --pytorch DIR'.

  python train.py [--runs RUNS_DIR] [--steps N | --epochs N] [--init W.safetensors] [--data-root DIR] [--device cpu|cuda]
  torchrun --redirects 1 --tee 1 --nproc_per_node N train.py [...]      # DistributedDataParallel

The same loop as Gatelab's (src/engine/train/loop.ts): the minibatches of data.py in Gatelab's order,
the state carried from batch to batch (sequential partitioning), the optimizer, learning-rate
schedule and gradient clipping of the model file (PyTorch's own, which Gatelab matches), an
evaluation on the held-out tail after every epoch, early stopping, and a Gatelab run record in the
runs folder (run.json, metrics.jsonl, samples.jsonl, model.safetensors, best.safetensors) that the
extension's side panel and dashboard show like any other run; the checkpoint works with 'gatelab
sample/predict/export' and as '--init'. Under torchrun every process takes its share of each
minibatch's rows (DDP averages the gradients: the same step as one process); rank 0 writes.
"""
import argparse
import json
import math
import os
import secrets
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as gdata  # noqa: E402
import st  # noqa: E402
from model import Classifier, Forecaster, LanguageModel, detach  # noqa: E402


def lr_at(s, total, lr, sch):
    """Gatelab's schedules (src/engine/train/schedule.ts), 0-based optimizer steps."""
    W = sch.get('warmupSteps', 0)
    if s < W:
        return lr * (s + 1) / W
    t = s - W
    if sch['type'] == 'step':
        return lr * sch['gamma'] ** (t // sch['stepSize'])
    if sch['type'] == 'cosine':
        T = max(1, total - W)
        return sch['minLearningRate'] + (lr - sch['minLearningRate']) * (1 + math.cos(math.pi * min(t, T) / T)) / 2
    return lr


def optimizer(cfg, params):
    o = cfg['optimizer']
    if o['type'] in ('sgd', 'momentum'):
        return torch.optim.SGD(params, lr=o['learningRate'], momentum=o.get('momentum', 0) if o['type'] == 'momentum' else 0, weight_decay=o.get('weightDecay', 0))
    cls = torch.optim.AdamW if o['type'] == 'adamw' else torch.optim.Adam
    return cls(params, lr=o['learningRate'], betas=(o['beta1'], o['beta2']), eps=o['epsilon'], weight_decay=o.get('weightDecay', 0))


def run_id(name):
    now = datetime.now()
    safe = ''.join(c if c.isalnum() or c in '._-' else '-' for c in name)[:40]
    return f"{now.strftime('%Y%m%d-%H%M%S')}-{now.microsecond // 1000:03d}-{safe}-{secrets.token_hex(4)}"


def write_json(path, obj):
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
        f.write('\n')
    os.replace(tmp, path)


def iso(t=None):
    return datetime.fromtimestamp(t or time.time(), timezone.utc).isoformat().replace('+00:00', 'Z')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', help='the runs folder (default: the one written when exporting)')
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--steps', type=int)
    g.add_argument('--epochs', type=int)
    ap.add_argument('--init', help='initial weights (a Gatelab checkpoint)')
    ap.add_argument('--data-root', help='the folder the data paths are relative to, if the data moved')
    ap.add_argument('--device', choices=['cpu', 'cuda'], help='default: cuda when available')
    a = ap.parse_args()
    with open(os.path.join(HERE, 'config.json')) as f:
        cfg = json.load(f)
    root = a.data_root or cfg['dataRoot']
    cfg['source'] = os.path.join(root, cfg['sourceRelative'])
    cfg['sources'] = [os.path.join(root, f) for f in cfg.get('sourcesRelative', [cfg['sourceRelative']])]
    for key in ('sequences', 'labels', 'split'):
        v = cfg.get(key)
        if isinstance(v, str) and key == 'sequences':
            cfg[key] = os.path.join(root, v)
        elif isinstance(v, dict) and 'file' in v:
            cfg[key] = {**v, 'file': os.path.join(root, v['file'])}

    world = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    device = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    if world > 1:
        import torch.distributed as dist
        if device.type == 'cuda':
            device = torch.device('cuda', int(os.environ.get('LOCAL_RANK', '0')))
            torch.cuda.set_device(device)
        dist.init_process_group('nccl' if device.type == 'cuda' else 'gloo')
    B = cfg['batchSize']
    if B % world:
        sys.exit(f'train.batchSize {B} does not divide among {world} processes: use a multiple of {world}')
    rows = slice(rank * (B // world), (rank + 1) * (B // world))

    torch.manual_seed(cfg['seed'])
    # Gatelab's generator: the task's split (classification) and every epoch's order draw from it
    rng = gdata.Rng(cfg['seed'])
    kind = 'sequences' if cfg['task'] == 'classification' and cfg.get('numeric') else cfg['task']
    try:
        task = {'language-model': LanguageModelTask, 'forecast': ForecastTask, 'classification': ClassificationTask, 'sequences': SequenceClassificationTask}[kind](cfg, device, rows, rng)
    except FileNotFoundError as e:
        sys.exit(f'data file not found: {e.filename} (the paths are relative to {root}; give --data-root DIR if the data moved)')
    model = task.model.to(device)
    init = a.init or cfg.get('init')
    if init:
        tensors, _ = st.load(init)
        named = model.gatelab_names()
        missing = [n for n in named if n not in tensors]
        if missing:
            sys.exit(f'{init} lacks {", ".join(missing)} (use a checkpoint of this model)')
        with torch.no_grad():
            for n, p in named.items():
                if tuple(tensors[n].shape) != tuple(p.shape):
                    sys.exit(f'{init}: {n} has shape {list(tensors[n].shape)}, the model wants {list(p.shape)}')
                p.copy_(tensors[n].to(p.dtype))
    net = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == 'cuda' else None)

    per_epoch = task.per_epoch
    steps = a.steps if a.steps is not None else (None if a.epochs is not None else cfg.get('steps'))
    epochs = a.epochs if a.epochs is not None else (cfg.get('epochs') or 10)
    if steps is not None:
        epochs = math.ceil(steps / max(1, per_epoch)) + 1
    total = steps if steps is not None else epochs * per_epoch
    opt = optimizer(cfg, model.parameters())

    # the run record (rank 0)
    runs = a.runs or cfg['runsDir']
    rid = run_id(cfg['name'])
    rdir = os.path.join(runs, rid)
    started = time.time()
    record = {'id': rid, 'model': cfg['name'], 'modelFile': cfg['modelFile'], 'modelLine': cfg.get('modelLine', 1), 'task': cfg['task'],
              'status': 'running', 'started': iso(started), 'device': device.type if world == 1 else f'{device.type} × {world} (torchrun)', 'pid': os.getpid()}
    if rank == 0:
        os.makedirs(rdir, exist_ok=True)
        with open(os.path.join(rdir, 'model.gatelab.yaml'), 'w') as f:
            f.write(cfg['modelText'])
        write_json(os.path.join(rdir, 'run.json'), record)
        print(f'run record: {rdir}', file=sys.stderr)
    metrics = open(os.path.join(rdir, 'metrics.jsonl'), 'a') if rank == 0 else None

    def log(obj):
        if metrics:
            metrics.write(json.dumps(obj) + '\n')
            metrics.flush()

    def save(name, step):
        if rank == 0:
            meta = dict(cfg['checkpointMetadata'])
            meta.update(task.metadata())
            meta['gatelab.step'] = str(step)
            st.save(os.path.join(rdir, name), {n: p.detach().float() for n, p in model.gatelab_names().items()}, meta)

    step = 0
    stopped_early = False
    best_state = None
    touched = [time.time()]
    best = math.inf
    best_epoch = None
    bad = 0
    es = cfg.get('earlyStopping')
    train_loss = math.nan
    valid_loss = None
    last_metrics = {}
    done_epochs = 0
    t_train = 0.0
    model.train()
    for epoch in range(1, epochs + 1):
        if steps is not None and step >= steps:
            break
        ep = task.epoch(rng)
        losses = []
        for i in range(ep.count):
            if steps is not None and step >= steps:
                break
            t0 = time.time()
            loss = ep.loss(net, i)
            opt.zero_grad()
            loss.backward()
            params = [p for p in model.parameters() if p.grad is not None]
            if cfg['clipNorm'] > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, cfg['clipNorm'])
            else:
                norm = torch.norm(torch.stack([p.grad.norm() for p in params]))
            lr = lr_at(step, total, cfg['optimizer']['learningRate'], cfg['schedule'])
            for group in opt.param_groups:
                group['lr'] = lr
            opt.step()
            step += 1
            value = loss.detach()
            if world > 1:
                torch.distributed.all_reduce(value)
                value /= world
            losses.append(value.item())
            t_train += time.time() - t0
            log({'step': step, 'epoch': epoch, 'loss': losses[-1], 'gradNorm': float(norm), 'lr': lr, 'time': round(time.time() - started, 3)})
            if rank == 0 and time.time() - touched[0] >= 10:
                # the record rewritten now and then: the side panel follows a long run live
                touched[0] = time.time()
                write_json(os.path.join(rdir, 'run.json'), {**record, 'progress': {'step': step, 'epoch': epoch, 'loss': losses[-1]}})
        if not losses:
            break
        done_epochs = epoch
        train_loss = sum(losses) / len(losses)
        model.eval()
        with torch.no_grad():
            scores = task.evaluate(model)
        model.train()
        valid_loss = scores[0] if scores else None
        line = {'epoch': epoch, 'step': step, 'trainLoss': train_loss, **task.train_metrics(train_loss), 'elapsedMs': round(1000 * (time.time() - started))}
        if scores:
            line.update({'validLoss': valid_loss, **scores[1]})
            last_metrics = {**scores[1], **(scores[2] if len(scores) > 2 else {})}
        log(line)
        if rank == 0:
            print(f"epoch {epoch}/{epochs}  step {step}  train loss {train_loss:.4f}" + (f"  valid loss {valid_loss:.4f}" if valid_loss is not None else '') + ''.join(f'  {k} {v:.4g}' for k, v in (scores[1] if scores else {}).items() if isinstance(v, float)), file=sys.stderr)
        save('model.safetensors', step)
        if rank == 0:
            touched[0] = time.time()
            write_json(os.path.join(rdir, 'run.json'), {**record, 'checkpoint': os.path.join(rdir, 'model.safetensors'), 'progress': {'step': step, 'epoch': epoch, 'loss': train_loss}})
        # the best weights by the validation loss; early stopping when it stalls, the best restored (as Gatelab)
        if valid_loss is not None and valid_loss < best - (es['minDelta'] if es else 0):
            best, best_epoch, bad = valid_loss, epoch, 0
            save('best.safetensors', step)
            best_state = {n: p.detach().clone() for n, p in model.gatelab_names().items()}
        elif valid_loss is not None:
            bad += 1
            if es and bad >= es['patience']:
                stopped_early = True
                with torch.no_grad():
                    for n, p in model.gatelab_names().items():
                        p.copy_(best_state[n])
                save('model.safetensors', step)
                break

    # the end: a sample from the trained model, the summary in run.json
    summary = {'model': cfg['name'], 'device': record['device'], 'steps': step, 'epochs': done_epochs, 'trainLoss': train_loss, 'validLoss': valid_loss,
               **task.summary(train_loss, last_metrics), 'tokensPerSecond': step * task.tokens_per_step / max(t_train, 1e-9),
               'elapsedSeconds': round(time.time() - started, 3), 'checkpoint': os.path.join(rdir, 'model.safetensors'), 'bestEpoch': best_epoch,
               **({'stoppedEarly': True} if stopped_early else {})}
    if rank == 0:
        if cfg['task'] == 'language-model':
            text = sample(model, cfg, device)
            summary['sample'] = text
            with open(os.path.join(rdir, 'samples.jsonl'), 'a') as f:
                f.write(json.dumps({'step': step, 'prefix': cfg['samplePrefix'], 'text': text, 'temperature': 0}) + '\n')
        record.update({'status': 'done', 'finished': iso(), 'checkpoint': summary['checkpoint'], 'summary': summary})
        write_json(os.path.join(rdir, 'run.json'), record)
        print(json.dumps(summary))
    if metrics:
        metrics.close()
    if world > 1:
        torch.distributed.destroy_process_group()



class _Epoch:
    def __init__(self, count, loss):
        self.count, self.loss = count, loss


class Task:
    """What a task adds to the loop: its epochs' losses, its evaluation and what it reports."""

    def train_metrics(self, loss):
        return {}

    def metadata(self):
        return {}

    def summary(self, train_loss, metrics):
        return dict(metrics)


class LanguageModelTask(Task):
    """Next-token prediction (Gatelab's language-model task): the corpus's minibatches, the state
    carried from batch to batch with sequential partitioning, the mean cross-entropy; validation on
    the held-out tail, its state carried across its batches."""

    def __init__(self, cfg, device, rows, rng):
        self.cfg, self.device, self.rows = cfg, device, rows
        self.model = LanguageModel(cfg)
        B, T = cfg['batchSize'], cfg['sequenceLength']
        self.B, self.T = B, T
        ids = gdata.load_ids(cfg)
        self.train, held = gdata.split_tail(ids, cfg['validation'])
        self.valid = held[: cfg['validationTokens']]
        seq = cfg['partition'] == 'sequential'
        self.epoch_of = gdata.sequential_epoch if seq else gdata.random_epoch
        self.per_epoch = (((len(self.train) - T - 1) // B) // T) if seq else (((len(self.train) - T) // T) // B)
        self.tokens_per_step = B * T

    def epoch(self, rng):
        ep = self.epoch_of(self.train, self.B, self.T, rng)
        carry = ep.contiguous and self.cfg['carryState']
        n = self.rows.stop - self.rows.start
        box = {'state': None}

        def loss(net, i):
            x, y = ep.batch(i)
            x = torch.tensor(x, device=self.device)[:, self.rows]
            y = torch.tensor(y, device=self.device)[:, self.rows]
            state = detach(box['state']) if carry and i > 0 and box['state'] is not None else self.model.zero_state(n, self.device)
            logits, box['state'] = net(x, state)
            return F.cross_entropy(logits, y.reshape(-1))

        return _Epoch(ep.count, loss)

    def evaluate(self, model):
        T = self.T
        if len(self.valid) <= T + 1:
            return None
        vb = gdata.validation_batches(self.valid, self.B, T)
        state = model.zero_state(vb.B, self.device)
        s = 0.0
        for k in range(vb.count):
            x, y = vb.batch(k)
            logits, state = model(torch.tensor(x, device=self.device), state)
            s += F.cross_entropy(logits, torch.tensor(y, device=self.device).reshape(-1)).item()
        loss = s / vb.count
        return loss, {'validPerplexity': math.exp(loss)}

    def train_metrics(self, loss):
        return {'trainPerplexity': math.exp(loss)}

    def summary(self, train_loss, metrics):
        return {'perplexity': math.exp(train_loss) if train_loss == train_loss else None, **metrics}


class ForecastTask(Task):
    """Gatelab's forecast task: windows of W rows, the next N target values, shuffled each epoch;
    the mean squared error (normalised); RMSE and MAE in the target's units beside persistence."""

    def __init__(self, cfg, device, rows, rng):
        self.cfg, self.device, self.rows = cfg, device, rows
        self.d = gdata.ForecastData(cfg)
        cfg['features'] = self.d.F
        self.model = Forecaster(cfg)
        self.B = min(cfg['batchSize'], len(self.d.train_starts))
        self.per_epoch = len(self.d.train_starts) // self.B
        self.tokens_per_step = self.B * self.d.W

    def epoch(self, rng):
        order = list(self.d.train_starts)
        rng.shuffle(order)

        def loss(net, i):
            x, y = self.d.windows(order[i * self.B:(i + 1) * self.B])
            x = torch.tensor(x, device=self.device)[:, self.rows]
            y = torch.tensor(y, device=self.device)[self.rows]
            return ((net(x) - y) ** 2).mean()

        return _Epoch(self.per_epoch, loss)

    def evaluate(self, model):
        d = self.d
        if not d.valid_starts:
            return None
        x, y = d.windows(d.valid_starts)
        pred = model(torch.tensor(x, device=self.device)).double().cpu().tolist()
        se = ae = bse = zse = 0.0
        n = 0
        for b, t in enumerate(d.valid_starts):
            ps = gdata.inverse(d.series, d.transform, d.mean, d.std, pred[b], t)
            for h in range(d.N):
                truth = d.series[t + h]
                se += (ps[h] - truth) ** 2
                ae += abs(ps[h] - truth)
                bse += (d.series[t - 1] - truth) ** 2
                zse += (pred[b][h] - y[b][h]) ** 2
                n += 1
        return zse / n, {'rmse': math.sqrt(se / n), 'mae': ae / n, 'baselineRmse': math.sqrt(bse / n)}




class ClassificationTask(Task):
    """Gatelab's classification task: the examples split (seeded random or the tail), the vocabulary
    of the training examples, minibatches of B sentences padded to T and shuffled each epoch; the
    mean cross-entropy; accuracy and the confusion matrix on the validation part."""

    def __init__(self, cfg, device, rows, rng):
        self.cfg, self.device, self.rows = cfg, device, rows
        ex = gdata.load_labelled(cfg)
        classes = sorted({label for _, label in ex})
        order = list(range(len(ex)))
        if cfg['split'] == 'random':
            rng.shuffle(order)
        n_valid = int(math.floor(len(ex) * cfg['validation'] + 0.5))
        self.train = [ex[i] for i in order[: len(ex) - n_valid]]
        self.valid = [ex[i] for i in order[len(ex) - n_valid:]]
        cfg['vocab'] = gdata.build_vocab([t for t, _ in self.train], cfg['minFrequency'])
        cfg['classes'] = classes
        self.index = {t: i for i, t in enumerate(cfg['vocab'])}
        self.classes = classes
        self.model = Classifier(cfg)
        self.T = cfg['sequenceLength']
        self.B = min(cfg['batchSize'], len(self.train))
        self.per_epoch = len(self.train) // self.B
        self.tokens_per_step = self.B * self.T

    def encode(self, batch):
        T, B = self.T, len(batch)
        x = [[0] * B for _ in range(T)]
        mask = [[0.0] * B for _ in range(T)]
        last, y = [], []
        for b, (toks, label) in enumerate(batch):
            n = min(T, len(toks))
            for t in range(n):
                x[t][b] = self.index.get(toks[t], 0)
                mask[t][b] = 1.0
            last.append(n - 1)
            y.append(self.classes.index(label))
        d = self.device
        return torch.tensor(x, device=d), torch.tensor(mask, device=d), torch.tensor(last, device=d), torch.tensor(y, device=d)

    def epoch(self, rng):
        idx = list(range(len(self.train)))
        rng.shuffle(idx)

        def loss(net, i):
            x, m, last, y = self.encode([self.train[n] for n in idx[i * self.B:(i + 1) * self.B]])
            r = self.rows
            return F.cross_entropy(net(x[:, r], m[:, r], last[r]), y[r])

        return _Epoch(self.per_epoch, loss)

    def evaluate(self, model):
        if not self.valid:
            return None
        x, m, last, y = self.encode(self.valid)
        p = torch.softmax(model(x, m, last), 1)
        C = len(self.classes)
        confusion = [[0] * C for _ in range(C)]
        for b, t in enumerate(y.tolist()):
            confusion[t][int(p[b].argmax())] += 1
        nll = -torch.log(p[torch.arange(len(self.valid)), y].clamp_min(1e-12)).mean().item()
        return nll, {'accuracy': sum(confusion[c][c] for c in range(C)) / len(self.valid)}, {'confusion': confusion, 'classes': self.classes}

    def metadata(self):
        return {'gatelab.vocab': json.dumps(self.cfg['vocab']), 'gatelab.classes': json.dumps(self.classes)}

class SequenceClassificationTask(ClassificationTask):
    """Gatelab's classification of numeric sequences (src/engine/tasks/numericClassification.ts): the
    sequences and labels, the split (a group table, seeded random or the tail), z-scores of every
    feature over the training steps, padding to T and masks; the network and scores of the sentence
    classifier."""

    def __init__(self, cfg, device, rows, rng):
        self.cfg, self.device, self.rows = cfg, device, rows
        ids, steps, labels, columns = gdata.load_sequences(cfg)
        self.classes = gdata._class_order(labels)
        n = len(ids)
        split = cfg['split']
        if isinstance(split, dict):
            groups = dict(gdata._table(split['file'], split.get('id'), split['group'], None))
            valid = {str(v) for v in split['valid']}
            train_idx = [i for i in range(n) if groups[ids[i]] not in valid]
            valid_idx = [i for i in range(n) if groups[ids[i]] in valid]
        else:
            order = list(range(n))
            if split == 'random':
                rng.shuffle(order)
            n_valid = int(math.floor(n * cfg['validation'] + 0.5))
            train_idx, valid_idx = order[: n - n_valid], order[n - n_valid:]
        F_ = len(columns)
        mean, std = [0.0] * F_, [1.0] * F_
        if cfg['scale'] == 'standard':
            all_steps = [st for i in train_idx for st in steps[i]]
            mean = [sum(s[f] for s in all_steps) / len(all_steps) for f in range(F_)]
            std = [math.sqrt(sum((s[f] - mean[f]) ** 2 for s in all_steps) / len(all_steps)) or 1.0 for f in range(F_)]
        self.layout = {'columns': columns, 'mean': mean, 'std': std}
        self.T = cfg['sequenceLength'] if cfg['sequenceLengthGiven'] else max(len(s) for s in steps)
        self.layout['T'] = self.T
        norm = [[[(v - mean[f]) / std[f] for f, v in enumerate(st)] for st in s] for s in steps]
        self.train = [(norm[i], labels[i]) for i in train_idx]
        self.valid = [(norm[i], labels[i]) for i in valid_idx]
        cfg['features'] = F_
        cfg['classes'] = self.classes
        self.model = Classifier(cfg)
        self.B = min(cfg['batchSize'], len(self.train))
        self.per_epoch = len(self.train) // self.B
        self.tokens_per_step = self.B * self.T

    def encode(self, batch):
        T, B = self.T, len(batch)
        F_ = len(self.layout['columns'])
        x = [[[0.0] * F_ for _ in range(B)] for _ in range(T)]
        mask = [[0.0] * B for _ in range(T)]
        last, y = [], []
        for b, (seq, label) in enumerate(batch):
            n = min(T, len(seq))
            for t in range(n):
                x[t][b] = seq[t]
                mask[t][b] = 1.0
            last.append(max(0, n - 1))
            y.append(self.classes.index(label))
        d = self.device
        return torch.tensor(x, device=d), torch.tensor(mask, device=d), torch.tensor(last, device=d), torch.tensor(y, device=d)

    def metadata(self):
        return {'gatelab.input': 'numeric', 'gatelab.classes': json.dumps(self.classes), 'gatelab.features': json.dumps(self.layout)}


def sample(model, cfg, device):
    """Greedy continuation of the sample prefix (Gatelab's end-of-run sample at temperature 0)."""
    index = {t: i for i, t in enumerate(cfg['vocab'])}
    toks = gdata.tokens_of(cfg['samplePrefix'], cfg['tokens'], cfg['preprocess'])
    ids = [index.get(t, 0) for t in toks] or [0]
    model.eval()
    out = list(toks)
    with torch.no_grad():
        state = model.zero_state(1, device)
        logits, state = model(torch.tensor(ids, device=device).reshape(-1, 1), state)
        for _ in range(cfg['sampleLength']):
            nxt = int(logits[-1].argmax())
            out.append(cfg['vocab'][nxt])
            logits, state = model(torch.tensor([[nxt]], device=device), state)
    return (' ' if cfg['tokens'] == 'word' else '').join(out)


if __name__ == '__main__':
    main()
`;

export const ST_PY = String.raw`"""safetensors files, read and written: the 'safetensors' package when it is installed, else this
small implementation of the format (an 8-byte little-endian header length, a JSON header, the raw
tensors), since Debian's python3-torch comes without it."""
import json
import os
import struct

import torch

_DT = {'F32': torch.float32, 'F64': torch.float64, 'I64': torch.int64, 'I32': torch.int32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'U8': torch.uint8}
_NAME = {v: k for k, v in _DT.items()}

try:  # the package, where it is installed
    from safetensors import safe_open as _safe_open
    from safetensors.torch import save_file as _save_file
except ImportError:  # the format, by hand
    _safe_open = _save_file = None


def load(path):
    """(tensors by name, metadata)."""
    if _safe_open is not None:
        with _safe_open(path, framework='pt') as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {}) or {}
    out = {}
    for name, h in header.items():
        a, b = h['data_offsets']
        t = torch.frombuffer(bytearray(data[a:b]), dtype=_DT[h['dtype']]) if b > a else torch.empty(0, dtype=_DT[h['dtype']])
        out[name] = t.reshape(h['shape']).clone()
    return out, meta


def save(path, tensors, metadata=None):
    """Written atomically (a temporary file renamed over the target), as Gatelab writes checkpoints."""
    tmp = f'{path}.tmp-{os.getpid()}'
    if _save_file is not None:
        _save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata={k: str(v) for k, v in (metadata or {}).items()})
        os.replace(tmp, path)
        return
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        b = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {'dtype': _NAME[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header['__metadata__'] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(tmp, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
`;
