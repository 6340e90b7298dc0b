#!/usr/bin/env python3
"""Static performance report of the CUDA kernels (issue 17, item 5): no GPU needed.

Inputs: the ptxas -v log of the fatbin build (registers, spills, shared memory per kernel and target) and the
SASS of the sm_90 cubin (nvdisasm or cuobjdump text). Per kernel it derives occupancy on sm_80/86/89/90; for the
matvec and attention kernels it finds the main loop in the SASS and derives warp-instructions per weight byte
and bytes in flight per SM; from those, a roofline estimate of a Llama-3.1-8B decode step on H100 and H200.
Budgets (native-build/kernel-budgets.tsv) turn regressions into a failing exit status.

Standard library only; kernel-report.sh prepares the inputs. Every modelling assumption is written into the
report's header (ASSUMPTIONS below), so the numbers can be judged against them.
"""
import argparse
import math
import os
import re
import sys

# ---------------------------------------------------------------------------------------------------------
# Hardware. Per-SM limits of the four SASS targets (CUDA programming guide, "compute capabilities" table).
ARCHS = {
    80: dict(max_threads=2048, max_blocks=32, smem=164 * 1024),
    86: dict(max_threads=1536, max_blocks=16, smem=100 * 1024),
    89: dict(max_threads=1536, max_blocks=24, smem=100 * 1024),
    90: dict(max_threads=2048, max_blocks=32, smem=228 * 1024),
}
REGS_PER_SM = 65536
REG_GRANULARITY = 256        # registers are allocated per warp in units of 256
SUB_PARTITIONS = 4           # a warp's registers come from one of 4 sub-partition register files
SMEM_GRANULARITY = 128
SMEM_RESERVED_PER_BLOCK = 1024   # the driver reserves 1 KB of shared memory per block on sm_80+

GPUS = {
    # name: (bytes/s, SMs, clock Hz)
    "H100 SXM": (3.35e12, 132, 1.98e9),
    "H200": (4.8e12, 132, 1.98e9),
}
ISSUE_PER_SM_CLK = 4.0       # warp-instructions issued per SM per clock (4 schedulers)
SLOW_PER_SM_CLK = 0.5        # conversions / MUFU: 16 lanes per clock per SM = half a warp-instruction
SLOW_OPS = ("I2F", "F2I", "F2F", "FRND", "MUFU")   # I2FP/F2IP (sm_90's fast forms) are not among them
LATENCIES_NS = (600.0, 800.0)    # DRAM load latency under load assumed for Little's law (a range)
LAUNCH_US = 2.0                  # cost of one kernel boundary inside a CUDA graph
DEFAULT_LAUNCHES_PER_LAYER = 15  # today's decoder (issue 17)
DEFAULT_LAUNCHES_OUTSIDE = 4     # embedding, final norm, head, argmax

# Llama-3.1-8B.
HIDDEN, LAYERS, HEADS, KV_HEADS, HEAD_DIM, FFN, VOCAB = 4096, 32, 32, 8, 128, 14336, 128256
CONTEXT = 1024
KV_BYTES = 2                 # F16 cache
WEIGHT_TYPES = {"q8_0": 34 / 32, "bf16": 2.0}   # bytes per weight
# Format bytes per staged quant byte of the flat matvec kernels whose scales travel by a few lanes' side copies.
FORMAT_RATIO = {"q8_0": 34 / 32}
ROWS = (1, 5)

# Block size (threads) and dynamic shared memory (bytes, at the 8B shape) per kernel, from the launch geometry
# (src/main/java/dev/tandem/runtime/cuda/LaunchGeometry.java and the comment atop each kernels/*.cu).
# First matching pattern wins. Keep this the one table of block sizes.
STAGE_BYTES = 8 * 32 * 16    # matvec.cu's flat formats: one warp's stage of one weight row (8 spans of 16 B a lane)
GEOMETRY = [
    # Flat formats stage weights by cp.async: 2 stages a warp and weight row (Q8_0 adds 256 B of scales a stage).
    (r"matvec_swiglu_q8_0", 64, 2 * 2 * 2 * (STAGE_BYTES + 256)),   # 2 warps, 2 weight rows each
    (r"matvec_swiglu_(f32|f16|bf16)", 64, 2 * 2 * 2 * STAGE_BYTES),
    (r"matvec_swiglu_", 64, 0),
    (r"matvec_q8_0", 128, 4 * 2 * (STAGE_BYTES + 256)),             # 4 output rows per block, one per warp
    (r"matvec_(f32|f16|bf16)", 128, 4 * 2 * STAGE_BYTES),
    (r"matvec_", 128, 0),
    # 16 query pairs' rows and scores over a 128-position chunk, the chunk's cache rows, the pairs' sums.
    (r"attention_partial", 128, (16 * (HEAD_DIM + 128) + 128 + 3 * 16 + 4) * 4),
    (r"rope_kv_append", 256, 0),
    (r"attention_combine", 128, 0),
    (r"kv_append", 128, 0),
    (r"accept_greedy$", 32, 0),
    (r"sample_probs$", 256, 8 * 4 + 260 * 4 + 1024 * 12),
    (r"accept_sampled$", 256, 264 * 4),
    (r"accept_sampled_batch$", 256, 264 * 4),
    (r"(embedding|dequantize16|rmsnorm|rope|swiglu|bias_add|narrow16|argmax)", 256, 0),
]

# matvec_[swiglu_]<type>[_r<R>]: <type> is one word with at most one "_<digits or k>" part (bf16, q8_0, q4_k);
# without _r<R> it is today's kernel for up to 17 rows.
MATVEC_NAME = re.compile(r"^matvec_(?P<swiglu>swiglu_)?(?P<type>[a-z0-9]+?(?:_[0-9k]+)?)(?:_r(?P<rows>\d+))?$")
# Attention: the kernel a pass with an F16 cache runs, and, for kernels bound by chains of dependent loads rather
# than by bytes in flight, the load latencies one block of one chunk waits through in sequence. Today's
# attention_partial*: the score loop takes each warp's 32 positions one at a time, each a block-table load (after
# an integer divide) and then the K load whose address depends on it (2 latencies); the V loop takes 16 positions
# per step, again table then V (8 steps x 2). The entry applies only while the kernel still looks like that (an
# integer divide, no streaming-hinted loads); otherwise, and for kernels not listed, Little's law on the main loop
# like a matvec. Delete the entries when the kernel is rewritten.
ATTENTION_KERNEL = "attention_partial_f16"
ATTENTION_CHUNK = 128
ATTENTION_CHAINS = {}  # the kernel that walked chains (one query head and row a block) was rewritten
ATTENTION_KERNELS = {"attention_partial": 4, "attention_partial_f16": 2, "attention_partial_bf16": 2}  # element bytes
LEGACY_ROWS = 17             # matvec_<type> without _r<R>: all 17 row slots, rows >= R skipped or predicated off

ASSUMPTIONS = """\
- Occupancy: blocks per SM = min(thread, block, register, shared-memory limits); registers rounded up to {g} per
  warp and allocated per sub-partition (4 × 16384); {res} B of shared memory reserved per block; block sizes and
  dynamic shared memory from the table in native-build/kernel_report.py (LaunchGeometry). Targets: sm_80 2048
  threads/32 blocks/164 KB, sm_86 1536/16/100 KB, sm_89 1536/24/100 KB, sm_90 2048/32/228 KB per SM.
- SASS is sm_90 only (the cubin of the fatbin's translation unit, same flags); the loop numbers apply to H100/H200.
- Main loop: the loop (a backward branch and the instructions from its target to it) that loads the most weight
  bytes; static count, both sides of any forward branch inside counted. Weight loads are loads with a streaming
  hint (`.NA` = ld.global.nc.L1::no_allocate, `.EF` = __ldcs, `.LU` = __ldlu, `LDGSTS...BYPASS`). A kernel with no
  such load falls back to the loads every iteration executes (not predicated, not skipped by a forward branch
  inside the loop): today's 17-row kernels load their one weight unit that way and the activation rows under
  `if (r < R)`. The report marks which rule found a kernel's weights.
- Warp-instructions per weight byte = loop instructions / (32 lanes × weight bytes per lane per iteration); the
  bytes are what the loads fetch, which exceeds the format's bytes where lanes fetch shared bytes (Q4_K/Q5_K/Q6_K
  scales and half-used quant words; not BF16 or Q8_0). Budgets use the static count.
  For today's 17-row kernels at R rows: the instructions every iteration runs plus R/17 of those under forward
  branches (row blocks); predicated-off instructions still issue, so a predicated loop costs the same at any R.
- Bytes in flight per warp: the weight loads issued before the first instruction that reads any of their
  destination registers (cp.async copies: all of them), × 32 lanes; per SM × resident warps at sm_90 occupancy,
  capped by the warps the grid has (one warp per output row).
- Memory time = bytes / (bandwidth × min(1, bytes in flight on all SMs / (bandwidth × latency))), latency
  {lat} ns (Little's law; needed per SM: H100 {need_h100}, H200 {need_h200}). Instruction time = warp-instructions /
  (SMs × {issue:g} per clock × clock); conversions and MUFU ({slow}) at {slowrate:g} warp-instructions per clock
  per SM. A matrix takes the largest of the three. Activation traffic (x re-read from L1/L2) costs instructions
  only; DRAM bytes are weights and K/V.
- Llama-3.1-8B: hidden {hidden}, {layers} layers, {heads}/{kv} heads of {hd}, FFN {ffn}, vocab {vocab}, untied head
  (same type as the layers), {ctx} context, F16 K/V. Q8_0 = 34 bytes per 32 weights, BF16 = 2 bytes. Embedding
  row, norms, RoPE, SwiGLU: their bytes are ignored, their launches counted.
- Attention: K/V bytes = context × head dim × 2 B × 2 (K, V) per KV head per layer, read once per {attn};
  time = max(bytes / bandwidth, layers × waves of blocks (chunks × heads × rows over resident blocks) × {chain}
  dependent load latencies per block), the chain counted from today's attention_partial_f16 (score loop: 32
  positions per warp, each a block-table load then the K load that needs it; V loop: 8 steps of 16 positions,
  table then V; applied while the kernel divides and has no streaming-hinted loads). Any other attention kernel
  gets Little's law on its SASS main loop. A launch plan may say `kv-head` for a kernel that reads K/V once.
- Per launch {launch:g} µs (a kernel boundary inside a CUDA graph) × launches per pass ({launches}).
- GPUs: H100 SXM 3.35 TB/s, H200 4.8 TB/s; 132 SMs, 1.98 GHz each. Floor = (weights + K/V read once per KV head)
  / bandwidth, no launch cost.
- R = 5 is one verification pass of 5 rows (the ms are per pass; tokens per pass depend on acceptance)."""


# ---------------------------------------------------------------------------------------------------------
# ptxas -v log.
def parse_ptxas(path):
    """{kernel: {arch: dict(regs, stack, spill_stores, spill_loads, smem)}} from a ptxas -v log."""
    kernels = {}
    cur = None
    with open(path, errors="replace") as f:
        for line in f:
            m = re.search(r"Compiling entry function '([^']+)' for 'sm_(\d+)'", line)
            if m:
                cur = dict(regs=0, stack=0, spill_stores=0, spill_loads=0, smem=0)
                kernels.setdefault(m.group(1), {})[int(m.group(2))] = cur
                continue
            if cur is None:
                continue
            m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
            if m:
                cur["stack"], cur["spill_stores"], cur["spill_loads"] = map(int, m.groups())
            m = re.search(r"Used (\d+) registers", line)
            if m:
                cur["regs"] = int(m.group(1))
                s = re.search(r"(\d+) bytes smem", line)
                cur["smem"] = int(s.group(1)) if s else 0
    return kernels


def geometry(kernel):
    for pattern, threads, dyn in GEOMETRY:
        if re.match(pattern, kernel):
            return threads, dyn
    return None, 0


def occupancy(arch, regs, smem, threads):
    """(blocks, warps) resident per SM, and the limiting resource."""
    a = ARCHS[arch]
    wpb = -(-threads // 32)
    limits = {"threads": a["max_threads"] // 32 // wpb, "blocks": a["max_blocks"]}
    if regs:
        per_warp = -(-regs * 32 // REG_GRANULARITY) * REG_GRANULARITY
        warps = (REGS_PER_SM // SUB_PARTITIONS) // per_warp * SUB_PARTITIONS
        limits["registers"] = warps // wpb
    per_block = -(-smem // SMEM_GRANULARITY) * SMEM_GRANULARITY + SMEM_RESERVED_PER_BLOCK
    limits["smem"] = a["smem"] // per_block
    blocks = min(limits.values())
    return blocks, blocks * wpb, min(limits, key=limits.get)


# ---------------------------------------------------------------------------------------------------------
# SASS.
INSTR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
FUNC = re.compile(r"^\s*(?:Function : (\S+)|\.text\.(\S+):)\s*$")
LABEL = re.compile(r"^\s*(\.L\w+):")


class Instr:
    __slots__ = ("addr", "pred", "op", "args")

    def __init__(self, addr, text):
        self.addr = addr
        m = re.match(r"(@!?U?P\w+)\s+(.*)", text)
        self.pred, text = (m.group(1), m.group(2)) if m else (None, text)
        parts = text.split(None, 1)
        self.op = parts[0]
        self.args = parts[1] if len(parts) > 1 else ""


def parse_sass(path):
    """{function: (instructions, {label: address})} from nvdisasm -c or cuobjdump -sass text."""
    funcs = {}
    name = None
    pending = []   # labels waiting for the next instruction's address
    with open(path, errors="replace") as f:
        for line in f:
            m = FUNC.match(line)
            if m:
                name = m.group(1) or m.group(2)
                funcs[name] = ([], {})
                pending = []
                continue
            if name is None:
                continue
            m = LABEL.match(line)
            if m:
                pending.append(m.group(1))
                continue
            m = INSTR.search(line)
            if m:
                ins = Instr(int(m.group(1), 16), m.group(2))
                for label in pending:
                    funcs[name][1][label] = ins.addr
                pending = []
                funcs[name][0].append(ins)
    return funcs


def branch_target(ins, labels):
    if not ins.op.startswith("BRA"):
        return None
    m = re.search(r"`\((\.L\w+)\)", ins.args)
    if m:
        return labels.get(m.group(1))
    m = re.search(r"0x([0-9a-f]+)", ins.args)
    return int(m.group(1), 16) if m else None


def load_info(ins):
    """(bytes per lane, streaming hint?, destination registers) of a global load, or None."""
    mods = ins.op.split(".")
    if mods[0] not in ("LDG", "LDGSTS"):
        return None
    size = 4
    for mod in mods[1:]:
        if mod in ("64", "128"):
            size = int(mod) // 8
        elif mod in ("U8", "S8"):
            size = 1
        elif mod in ("U16", "S16"):
            size = 2
    hinted = any(m in ("NA", "EF", "LU") for m in mods[1:]) or (mods[0] == "LDGSTS" and "BYPASS" in mods)
    dests = set()
    if mods[0] == "LDG":
        m = re.match(r"R(\d+)", ins.args)
        if m:
            dests = {int(m.group(1)) + i for i in range(max(1, size // 4))}
    return size, hinted, dests


STORES = ("ST", "STG", "STS", "STL", "RED", "BRA", "EXIT", "BAR", "LDGSTS")


def reads(ins):
    """General registers the instruction reads (address pairs 'R12.64' count as two)."""
    args = ins.args
    if not ins.op.split(".")[0] in STORES:
        args = args.split(",", 1)[1] if "," in args else ""   # the first operand is the destination
    regs = set()
    for m in re.finditer(r"\bR(\d+)(\.64)?", args):
        r = int(m.group(1))
        regs.add(r)
        if m.group(2):
            regs.add(r + 1)
    return regs


def loop_metrics(instrs, labels):
    """Metrics of the loop with the most weight bytes per iteration, or None when no loop loads anything."""
    loops = []
    for i, ins in enumerate(instrs):
        t = branch_target(ins, labels)
        if t is not None and t < ins.addr:
            start = next(j for j, x in enumerate(instrs) if x.addr >= t)
            loops.append(instrs[start:i + 1])
    if not loops:
        return None
    # Instructions under a forward branch that stays inside the loop are conditional (row blocks).
    analysed = []
    for body in loops:
        hi = body[-1].addr
        skipped = [False] * len(body)
        for i, ins in enumerate(body[:-1]):
            t = branch_target(ins, labels)
            if t is not None and ins.addr < t <= hi:
                for j in range(i + 1, len(body)):
                    if body[j].addr >= t:
                        break
                    skipped[j] = True
        analysed.append((body, skipped))
    any_hint = any(load_info(x) and load_info(x)[1] for body, _ in analysed for x in body)
    best = None
    for body, skipped in analysed:
        weights = []
        for ins, cond in zip(body, skipped):
            info = load_info(ins)
            if not info:
                continue
            size, hinted, dests = info
            # Hinted loads under a forward branch are the few lanes' side copies (Q8_0's scales, 8 bytes a lane
            # of 136): left out here, and the format's scale bytes added back by format_bytes.
            if (hinted and not cond and ins.pred is None) if any_hint else (ins.pred is None and not cond):
                weights.append((ins, size, dests))
        wbytes = sum(s for _, s, _ in weights)
        if wbytes and (best is None or wbytes > best[2] or (wbytes == best[2] and len(body) < len(best[0]))):
            best = (body, skipped, wbytes, weights)
    if best is None:
        return None
    body, skipped, wbytes, weights = best
    # Bytes before first use: walk the body; stop at the first instruction reading a pending weight register.
    pending, early = set(), 0
    weight_ids = {id(w[0]) for w in weights}
    nested = sum(1 for x in body[:-1] if (lambda t: t is not None and t < x.addr)(branch_target(x, labels)))
    for ins in body:
        if reads(ins) & pending:
            break
        if id(ins) in weight_ids:
            size, _, dests = load_info(ins)
            pending |= dests
            early += size
    slow = lambda ins: ins.op.split(".")[0] in SLOW_OPS
    cond = sum(skipped)
    return dict(
        instrs=len(body), cond=cond, uncond=len(body) - cond,
        slow_uncond=sum(1 for x, c in zip(body, skipped) if slow(x) and not c),
        slow_cond=sum(1 for x, c in zip(body, skipped) if slow(x) and c),
        wbytes=wbytes, early=early, loads=len(weights), hinted=any_hint,
        spills=sum(1 for x in body if x.op.split(".")[0] in ("LDL", "STL")), nested=nested,
        start=body[0].addr, end=body[-1].addr)


# ---------------------------------------------------------------------------------------------------------
# Roofline.
def executed(m, rows, legacy):
    """Warp-instructions and slow-pipe instructions per loop iteration at `rows` activation rows."""
    if legacy:
        f = min(rows, LEGACY_ROWS) / LEGACY_ROWS
        return m["uncond"] + f * m["cond"], m["slow_uncond"] + f * m["slow_cond"]
    return m["instrs"], m["slow_uncond"] + m["slow_cond"]


def pick_matvec(kernels, wtype, rows, swiglu=False):
    """The instantiation a pass of `rows` rows would launch: smallest _r<R> with R >= rows, else the 17-row one."""
    best = None
    for name, k in kernels.items():
        m = MATVEC_NAME.match(name)
        if not m or m.group("type") != wtype or bool(m.group("swiglu")) != swiglu or not k.get("loop"):
            continue
        r = int(m.group("rows")) if m.group("rows") else LEGACY_ROWS + 0.5   # prefer a specialised R
        if r >= rows and (best is None or r < best[0]):
            best = (r, name)
    return best[1] if best else None


def matrix_time(k, nbytes, out_rows, rows, gpu, latency_ns):
    """Seconds for one matvec over `nbytes` of weights with `out_rows` output rows (one warp each)."""
    bw, sms, clock = GPUS[gpu]
    m = k["loop"]
    legacy = k["legacy"]
    instr, slow = executed(m, rows, legacy)
    lane_bytes = m["wbytes"]
    iterations = nbytes / (32 * lane_bytes)          # warp-iterations over the whole matrix
    t_issue = iterations * instr / (sms * ISSUE_PER_SM_CLK * clock)
    t_slow = iterations * slow / (sms * SLOW_PER_SM_CLK * clock)
    warps = min(k["occ"][90][1], out_rows / sms)
    inflight = 32 * m["early"] * warps * sms
    frac = min(1.0, inflight / (bw * latency_ns * 1e-9))
    t_mem = nbytes / (bw * frac)
    return max(t_mem, t_issue, t_slow)


def attention_time(kernels, name, elem_bytes, rows, gpu, latency_ns, attn_mode, attn_eff):
    """(K/V bytes, seconds) of one pass's attention with kernel `name` over a cache of `elem_bytes` elements."""
    bw, sms, _ = GPUS[gpu]
    once = LAYERS * KV_HEADS * CONTEXT * HEAD_DIM * elem_bytes * 2
    nbytes = once * (1 if attn_mode == "kv-head" else (HEADS // KV_HEADS) * rows)
    t = nbytes / bw
    k = kernels.get(name)
    blocks = -(-CONTEXT // ATTENTION_CHUNK) * KV_HEADS       # grid (chunks, KV heads): every row and query head in one block
    if attn_eff:
        t = nbytes / (bw * attn_eff)
    elif k and name in ATTENTION_CHAINS and k.get("int_divide") and not (k.get("loop") or {}).get("hinted") \
            and k["occ"].get(90):
        # Latency-bound: each block walks its chunk through chains of dependent loads; blocks run in waves.
        waves = -(-blocks // (k["occ"][90][0] * sms))
        t = max(t, LAYERS * waves * ATTENTION_CHAINS[name] * latency_ns * 1e-9)
    elif k and k.get("loop") and k["occ"].get(90):
        # Little's law on the kernel's main loop, like a matvec; the grid bounds the warps.
        warps = min(k["occ"][90][1], blocks * (k["threads"] // 32) / sms)
        frac = min(1.0, 32 * k["loop"]["early"] * warps * sms / (bw * latency_ns * 1e-9))
        t = nbytes / (bw * frac)
    return nbytes, t


def layer_matrices(fused):
    """(name, K, N, swiglu) of one layer's projections."""
    mats = []
    if "qkv" in fused:
        mats.append(("wqkv", HIDDEN, (HEADS + 2 * KV_HEADS) * HEAD_DIM, False))
    else:
        mats += [("wq", HIDDEN, HEADS * HEAD_DIM, False), ("wk", HIDDEN, KV_HEADS * HEAD_DIM, False),
                 ("wv", HIDDEN, KV_HEADS * HEAD_DIM, False)]
    mats.append(("wo", HEADS * HEAD_DIM, HIDDEN, False))
    if "gate_up" in fused:
        mats.append(("gate+up", HIDDEN, 2 * FFN, True))
    else:
        mats += [("gate", HIDDEN, FFN, False), ("up", HIDDEN, FFN, False)]
    mats.append(("down", FFN, HIDDEN, False))
    return mats


def read_plan(path):
    """Launch plan rows keyed by (type, rows); '*' matches any. See native-build/README.md for the columns."""
    plan = {}
    if not path or not os.path.exists(path):
        return plan
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            cols = line.split("\t")
            if cols[0] == "type":
                continue  # header
            t, r, per_layer, outside = cols[0].lower(), cols[1], int(cols[2]), int(cols[3])
            fused = set(c.strip() for c in cols[4].split(",")) if len(cols) > 4 and cols[4].strip() not in ("", "-") else set()
            attention = cols[5].strip() if len(cols) > 5 and cols[5].strip() in ("kv-head", "query-head-row") else None
            plan[(t, r)] = (per_layer, outside, fused, attention)
    return plan


def plan_for(plan, wtype, rows):
    for key in ((wtype, str(rows)), (wtype, "*"), ("*", str(rows)), ("*", "*")):
        if key in plan:
            return plan[key]
    return DEFAULT_LAUNCHES_PER_LAYER, DEFAULT_LAUNCHES_OUTSIDE, set(), None


def estimate(kernels, wtype, rows, gpu, latency_ns, plan, attn_mode, attn_eff):
    """dict(ms, floor_ms, parts) for one decode/verification pass, or None when a kernel is missing."""
    bpw = WEIGHT_TYPES[wtype]
    bw, sms, clock = GPUS[gpu]
    per_layer, outside, fused, planned_attention = plan_for(plan, wtype, rows)
    attn_mode = planned_attention or attn_mode
    t_weights, weight_bytes = 0.0, 0.0
    per_kernel = {}   # kernel: [bytes, seconds] over the pass, for gpu-check's achieved-vs-estimated rows
    for name, K, N, swiglu in layer_matrices(fused) + [("head", HIDDEN, VOCAB, False)]:
        kname = pick_matvec(kernels, wtype, rows, swiglu) if swiglu else None
        if swiglu and not kname:          # no fused kernel: two plain matvecs over the halves
            kname = pick_matvec(kernels, wtype, rows)
        kname = kname or pick_matvec(kernels, wtype, rows)
        if not kname:
            return None
        nbytes = K * N * bpw
        count = 1 if name == "head" else LAYERS
        t = count * matrix_time(kernels[kname], nbytes, N, rows, gpu, latency_ns)
        t_weights += t
        weight_bytes += count * nbytes
        per_kernel.setdefault(kname, [0.0, 0.0])
        per_kernel[kname][0] += count * nbytes
        per_kernel[kname][1] += t
    kv_once = LAYERS * KV_HEADS * CONTEXT * HEAD_DIM * KV_BYTES * 2
    for name, elem in ATTENTION_KERNELS.items():   # gpu-check's runs may use another cache type: all three
        if name in kernels:
            per_kernel[name] = attention_time(kernels, name, elem, rows, gpu, latency_ns, attn_mode, attn_eff)
    kv_bytes, t_attn = per_kernel.get(ATTENTION_KERNEL) or attention_time(
        kernels, ATTENTION_KERNEL, KV_BYTES, rows, gpu, latency_ns, attn_mode, attn_eff)
    frac = kv_bytes / bw / t_attn
    launches = per_layer * LAYERS + outside
    t_launch = launches * LAUNCH_US * 1e-6
    total = t_weights + t_attn + t_launch
    floor = (weight_bytes + kv_once) / bw
    return dict(ms=total * 1e3, floor_ms=floor * 1e3, weights_ms=t_weights * 1e3, attn_ms=t_attn * 1e3,
                launch_ms=t_launch * 1e3, launches=launches, attn_frac=frac, fused=fused, per_kernel=per_kernel)


# ---------------------------------------------------------------------------------------------------------
# Budgets.
def read_budgets(path):
    """{kernel: dict(max_registers, max_instr_per_byte, min_bytes_in_flight)}; '-' = no limit."""
    budgets = {}
    if not os.path.exists(path):
        return budgets
    cols = ("max_registers", "max_instr_per_byte", "min_bytes_in_flight")
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("kernel\t"):
                continue
            parts = line.split()
            budgets[parts[0]] = {c: (None if v == "-" else float(v)) for c, v in zip(cols, parts[1:])}
    return budgets


def check(kernels, budgets, strict):
    violations, missing = [], []
    for name, k in sorted(kernels.items()):
        # ptxas may spill a few bytes outside a matvec's main loop to reach a lower register count (one more block
        # per SM); build-fatbin.sh lets those through, and this report fails any spill inside the main loop.
        for arch, p in sorted(k["ptxas"].items()):
            if (p["spill_stores"] or p["spill_loads"]) and not name.startswith("matvec_"):
                violations.append("%s: spills on sm_%d: %d B stores, %d B loads, budget 0"
                                  % (name, arch, p["spill_stores"], p["spill_loads"]))
        loop = k.get("loop") or {}
        if loop.get("spills"):
            violations.append("%s: %d spill instructions in the sm_90 main loop, budget 0" % (name, loop["spills"]))
        b = budgets.get(name)
        if b is None:
            missing.append(name)
            continue
        regs = max(p["regs"] for p in k["ptxas"].values())
        if b["max_registers"] is not None and regs > b["max_registers"]:
            violations.append("%s: registers %d, budget %d" % (name, regs, b["max_registers"]))
        if k.get("ipb") is not None and b["max_instr_per_byte"] is not None and k["ipb"] > b["max_instr_per_byte"] + 1e-9:
            violations.append("%s: loop instructions per weight byte %.3f, budget %.3f"
                              % (name, k["ipb"], b["max_instr_per_byte"]))
        if b["min_bytes_in_flight"] is not None and (k.get("inflight") or 0) < b["min_bytes_in_flight"]:
            violations.append("%s: bytes in flight per SM %d, budget at least %d"
                              % (name, k.get("inflight") or 0, b["min_bytes_in_flight"]))
    if strict:
        violations += ["%s: no budget (--strict)" % n for n in missing]
    return violations, missing


# ---------------------------------------------------------------------------------------------------------
def span(lo, hi, sep="-"):
    """'191' or '158-169': a range at 0 decimals, one number when both ends print alike."""
    return "%.0f" % lo if "%.0f" % lo == "%.0f" % hi else "%.0f%s%.0f" % (lo, sep, hi)


def kb(n):
    return "%.1f KB" % (n / 1024)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ptxas-log", required=True)
    ap.add_argument("--sass", required=True, help="nvdisasm -c / cuobjdump -sass text of the sm_90 cubin")
    ap.add_argument("--out", required=True, help="the Markdown report to write")
    ap.add_argument("--budgets", required=True)
    ap.add_argument("--launch-plan", default="")
    ap.add_argument("--attention", choices=("query-head-row", "kv-head"), default="query-head-row",
                    help="K/V read once per query head and row (today's kernel) or once per KV head")
    ap.add_argument("--attention-efficiency", type=float, default=0.0,
                    help="share of the bandwidth attention reaches (default: from attention_partial_f16's SASS)")
    ap.add_argument("--strict", action="store_true", help="a kernel without a budget fails")
    ap.add_argument("--write-budgets", help="write today's values as budgets to this file and exit")
    ap.add_argument("--estimates-out", help="per kernel and GPU the estimated GB/s at R = 1 (TSV, for gpu-check.sh)")
    ap.add_argument("--sources", default="", help="one line naming the inputs, for the header")
    a = ap.parse_args()

    ptxas = parse_ptxas(a.ptxas_log)
    funcs = parse_sass(a.sass)
    if not ptxas or not funcs:
        print("kernel-report: no kernels in %s or %s" % (a.ptxas_log, a.sass), file=sys.stderr)
        return 1
    kernels = {}
    for name, per_arch in ptxas.items():
        threads, dyn = geometry(name)
        k = dict(ptxas=per_arch, threads=threads, dyn=dyn, occ={}, legacy=False)
        if threads:
            for arch, p in per_arch.items():
                if arch in ARCHS:
                    k["occ"][arch] = occupancy(arch, p["regs"], p["smem"] + dyn, threads)
        if name in funcs:
            # Today's attention divides (position / block size: I2F.RP, the reciprocal's seed) before its table loads.
            k["int_divide"] = any(ins.op.startswith("I2F.RP") for ins in funcs[name][0])
        if (name.startswith("matvec_") or name.startswith("attention_partial")) and name in funcs:
            m = loop_metrics(*funcs[name])
            mm = MATVEC_NAME.match(name)
            if m and mm and m["hinted"]:
                # Bytes a lane's loop iteration moves in the format: staged quants plus their scales.
                ratio = FORMAT_RATIO.get(mm.group("type"), 1.0)
                m["wbytes"] *= ratio
                m["early"] *= ratio
            if m:
                k["loop"] = m
                k["ipb"] = m["instrs"] / (32 * m["wbytes"])
                if 90 in k["occ"]:
                    k["inflight"] = 32 * m["early"] * k["occ"][90][1]
        mm = MATVEC_NAME.match(name)
        k["legacy"] = bool(mm and not mm.group("rows"))
        kernels[name] = k

    if a.write_budgets:
        with open(a.write_budgets, "w") as f:
            f.write(BUDGET_HEADER)
            for name, k in sorted(kernels.items()):
                regs = max(p["regs"] for p in k["ptxas"].values())
                ipb = "%.3f" % (math.ceil(k["ipb"] * 1000) / 1000) if k.get("ipb") else "-"
                fl = "%d" % k["inflight"] if k.get("inflight") else "-"
                f.write("%s\t%d\t%s\t%s\n" % (name, regs, ipb, fl))
        print("kernel-report: wrote %s (%d kernels)" % (a.write_budgets, len(kernels)))
        return 0

    budgets = read_budgets(a.budgets)
    violations, missing = check(kernels, budgets, a.strict)
    plan = read_plan(a.launch_plan)

    need = {g: bw * LATENCIES_NS[0] * 1e-9 / sms for g, (bw, sms, _) in GPUS.items()}
    need_hi = {g: bw * LATENCIES_NS[1] * 1e-9 / sms for g, (bw, sms, _) in GPUS.items()}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shown = os.path.relpath(a.launch_plan, repo) if a.launch_plan else ""
    plan_desc = ("from %s" % shown) if plan else ("%d per layer + %d outside the layers (today's count; no %s)"
                                                         % (DEFAULT_LAUNCHES_PER_LAYER, DEFAULT_LAUNCHES_OUTSIDE,
                                                            shown or "launch plan"))
    out = ["# Kernel report (static: ptxas + sm_90 SASS, no GPU)", "",
           "Generated by `native-build/kernel-report.sh`. %s" % a.sources, "", "## Assumptions", "",
           ASSUMPTIONS.format(g=REG_GRANULARITY, res=SMEM_RESERVED_PER_BLOCK,
                              lat="%g–%g" % LATENCIES_NS,
                              need_h100="%s–%s" % (kb(need["H100 SXM"]), kb(need_hi["H100 SXM"])),
                              need_h200="%s–%s" % (kb(need["H200"]), kb(need_hi["H200"])),
                              issue=ISSUE_PER_SM_CLK, slow="/".join(SLOW_OPS), slowrate=SLOW_PER_SM_CLK,
                              hidden=HIDDEN, layers=LAYERS, heads=HEADS, kv=KV_HEADS, hd=HEAD_DIM, ffn=FFN,
                              vocab=VOCAB, ctx=CONTEXT,
                              attn=("KV head" if a.attention == "kv-head" else
                                    "query head and row (today's kernel: %d× per row)" % (HEADS // KV_HEADS)),
                              launch=LAUNCH_US, launches=plan_desc,
                              chain=ATTENTION_CHAINS.get(ATTENTION_KERNEL, "no")), ""]

    # Estimates.
    out += ["## Llama-3.1-8B estimate", "",
            "| type | R | GPU | ms per pass | passes/s (R = 1: tok/s) | floor ms | of floor | weights ms | attention ms (BW share) | launches (ms) | matvec kernel |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = []
    estimates = []   # (kernel, type, rows, gpu, GB/s slow end, GB/s fast end)
    for wtype in WEIGHT_TYPES:
        for rows in ROWS:
            for gpu in GPUS:
                ests = [estimate(kernels, wtype, rows, gpu, lat, plan, a.attention, a.attention_efficiency) for lat in LATENCIES_NS]
                if ests[0] is None:
                    out.append("| %s | %d | %s | no matvec_%s kernel | | | | | | | |" % (wtype.upper(), rows, gpu, wtype))
                    continue
                fast, slow = ests[0], ests[1]      # 600 ns is the optimistic end
                for kname, (nb, t) in sorted(fast["per_kernel"].items()):
                    ns, ts = slow["per_kernel"][kname]
                    estimates.append((kname, wtype, rows, gpu, ns / ts / 1e9, nb / t / 1e9))
                def rng(key, fmt):
                    lo, hi = sorted((fast[key], slow[key]))
                    return fmt % lo if fmt % lo == fmt % hi else (fmt % lo) + "–" + (fmt % hi)
                kname = pick_matvec(kernels, wtype, rows)
                out.append("| %s | %d | %s | %s | %s | %.2f | %s %% | %s | %s (%s %%) | %d (%.2f) | `%s |" % (
                    wtype.upper(), rows, gpu, rng("ms", "%.2f"), span(1e3 / slow["ms"], 1e3 / fast["ms"], "–"),
                    fast["floor_ms"], span(100 * slow["floor_ms"] / slow["ms"], 100 * fast["floor_ms"] / fast["ms"], "–"),
                    rng("weights_ms", "%.2f"), rng("attn_ms", "%.2f"),
                    span(100 * slow["attn_frac"], 100 * fast["attn_frac"], "–"), fast["launches"],
                    fast["launch_ms"], kname + ("` (fused: %s)" % ", ".join(sorted(fast["fused"])) if fast["fused"] else "`")))
                summary.append("%s R=%d %s: %s passes/s, %s %% of the floor's %.0f" % (
                    wtype.upper(), rows, gpu, span(1e3 / slow["ms"], 1e3 / fast["ms"]),
                    span(100 * slow["floor_ms"] / slow["ms"], 100 * fast["floor_ms"] / fast["ms"]), 1e3 / fast["floor_ms"]))
    out += ["", "Ranges: latency %g ns (slow end) to %g ns (fast end)." % (LATENCIES_NS[1], LATENCIES_NS[0]), ""]

    # Main loops.
    out += ["## Main loops (sm_90 SASS)", "",
            "| kernel | weights by | loop instructions (under a branch) | slow-pipe | weight loads | weight B/lane/iter | instr per weight byte | executed per byte at R = 1 / 5 | B in flight per warp | warps/SM | B in flight per SM | budget |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, k in sorted(kernels.items()):
        m = k.get("loop")
        if not m:
            continue
        b = budgets.get(name)
        per_r = " / ".join("%.3f" % (executed(m, r, k["legacy"])[0] / (32 * m["wbytes"])) for r in ROWS)
        out.append("| %s | %s | %d (%d) | %d | %d | %d | %.3f | %s | %d | %d | %s | %s |" % (
            name, "hint" if m["hinted"] else "every-iteration LDG (fallback)", m["instrs"], m["cond"],
            m["slow_uncond"] + m["slow_cond"], m["loads"], m["wbytes"], k["ipb"],
            per_r if k["legacy"] else "(static)", 32 * m["early"],
            k["occ"][90][1], kb(k["inflight"]),
            "no budget" if b is None else "≤ %s instr/B, ≥ %s" % (
                "-" if b["max_instr_per_byte"] is None else "%.3f" % b["max_instr_per_byte"],
                "-" if b["min_bytes_in_flight"] is None else kb(b["min_bytes_in_flight"]))))
    out.append("")

    # Resources.
    out += ["## Resources and occupancy", "",
            "Registers, spills (stores/loads), shared memory from ptxas; occupancy as resident blocks/warps per SM "
            "(limiting resource) at the block size shown.", "",
            "| kernel | block | registers sm_80/86/89/90 | spills | stack | smem static (+dynamic) | sm_80 | sm_86 | sm_89 | sm_90 | register budget |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, k in sorted(kernels.items()):
        p = k["ptxas"]
        archs = [a_ for a_ in (80, 86, 89, 90)]
        regs = "/".join(str(p[x]["regs"]) if x in p else "?" for x in archs)
        spills = max((p[x]["spill_stores"], p[x]["spill_loads"]) for x in p)
        stack = max(p[x]["stack"] for x in p)
        smem = max(p[x]["smem"] for x in p)
        occ = []
        for x in archs:
            if x in k["occ"]:
                bl, wa, lim = k["occ"][x]
                occ.append("%d/%d (%s)" % (bl, wa, lim))
            else:
                occ.append("?")
        b = budgets.get(name)
        out.append("| %s | %s | %s | %s | %d B | %d B%s | %s | %s |" % (
            name, k["threads"] or "? (not in GEOMETRY)", regs, "%d/%d B" % spills, stack, smem,
            " (+%d)" % k["dyn"] if k["dyn"] else "", " | ".join(occ),
            "no budget" if b is None else ("-" if b["max_registers"] is None else "≤ %d" % b["max_registers"])))
    out.append("")
    if violations:
        out += ["## Budget violations", ""] + ["- " + v for v in violations] + [""]

    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(out))

    if a.estimates_out:
        # Read by gpu-bench-table.sh: the estimate beside each kernel's achieved bandwidth on the device.
        with open(a.estimates_out, "w") as f:
            f.write("# native-build/kernel-report.sh: estimated GB/s per kernel over a Llama-3.1-8B pass (%s)\n" % a.sources)
            f.write("kernel\ttype\trows\tgpu\tgbps_800ns\tgbps_600ns\n")
            for e in estimates:
                f.write("%s\t%s\t%d\t%s\t%.0f\t%.0f\n" % e)

    # Summary on stdout.
    for name in sorted(kernels):
        k = kernels[name]
        if name.startswith("matvec_") and k.get("loop"):
            m = k["loop"]
            print("kernel-report: %-22s %3d regs, loop %3d instr / %3d B per lane = %.3f instr/B, %s in flight per SM (%d warps)"
                  % (name, k["ptxas"].get(90, {}).get("regs", 0), m["instrs"], m["wbytes"], k["ipb"],
                     kb(k["inflight"]), k["occ"][90][1]))
    for line in summary:
        print("kernel-report: " + line)
    if missing:
        print("kernel-report: no budget: %s%s" % (", ".join(missing), " (fails with --strict)" if not a.strict else ""))
    stale = sorted(set(budgets) - set(kernels))
    if stale:
        print("kernel-report: budgets for kernels that no longer exist (delete them): %s" % ", ".join(stale))
    for v in violations:
        print("kernel-report: BUDGET: " + v, file=sys.stderr)
    print("kernel-report: %s" % a.out)
    return 1 if violations else 0


BUDGET_HEADER = """\
# Budgets of native-build/kernel-report.sh: per kernel (a matvec's row count is in its name, matvec_<type>_r<R>),
# the most registers on any target, the most main-loop warp-instructions per weight byte (sm_90) and the fewest
# weight bytes in flight per SM (sm_90). '-' = no limit. A kernel over a budget, or spilling, fails the report;
# a kernel missing here is reported as "no budget" (fails with --strict). Tighten these when kernels improve;
# regenerate with `native-build/kernel-report.sh --write-budgets` (records today's values).
kernel\tmax_registers\tmax_instr_per_byte\tmin_bytes_in_flight
"""

if __name__ == "__main__":
    sys.exit(main())
