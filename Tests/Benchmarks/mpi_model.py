#!/usr/bin/env python3
"""Communication model for data-parallel pretraining (see docs/cluster.md, "Pretraining on a cluster (MPI)").

Weak scaling: every node keeps the measured single-node batch (64) and throughput, the global
batch grows with the nodes. Each step sums every gradient once with a ring allreduce, after
backward (not overlapped with it), in buckets of 2^24 values:

    t_allreduce(N) = 2 (N-1)/N * 4P / B  +  2 (N-1) * buckets * alpha
    efficiency(N)  = t_step / (t_step + t_allreduce(N))

B is the link's bandwidth at 80 % of its nominal rate, alpha the per-message latency.
"""
import argparse
import math

BUCKET = 1 << 24
NETWORKS = [("10 Gbit/s Ethernet", 10e9, 30e-6), ("100 Gbit/s InfiniBand/RoCE", 100e9, 5e-6)]


def allreduce_seconds(parameters, nodes, bits_per_second, latency):
    if nodes == 1:
        return 0.0
    bandwidth = 0.8 * bits_per_second / 8
    buckets = math.ceil(parameters / BUCKET)
    return 2 * (nodes - 1) / nodes * 4 * parameters / bandwidth + 2 * (nodes - 1) * buckets * latency


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", required=True, help="'IMG_PER_S PARAMETERS' of one node (wsi bench train)")
    parser.add_argument("--small", required=True, help="the same for the small preset")
    parser.add_argument("--measured-ms", type=float, help="measured collective time per step on this machine")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    presets = {}
    for name in ("tiny", "small"):
        rate, parameters = getattr(args, name).split()
        presets[name] = (float(rate), int(parameters))

    if args.measured_ms:
        _, parameters = presets["tiny"]
        volume = 2 * (args.ranks - 1) / args.ranks * 4 * parameters
        print(f"this machine: {args.ranks} ranks sum {4 * parameters / 1e6:.1f} MB of tiny's gradients in {args.measured_ms:.1f} ms "
              f"per step ({volume / (args.measured_ms / 1000) / 1e9:.2f} GB/s ring-equivalent, shared memory)")
    print(f"\nmodel: weak scaling, {args.batch} images per node per step, allreduce after backward (no overlap)")
    print(f"{'preset':6} {'params':>8} {'step s':>7} {'network':28} " + " ".join(f"{n:>6} nodes" for n in (2, 8, 16, 32)))
    for name, (rate, parameters) in presets.items():
        step = args.batch / rate
        for network, bits, latency in NETWORKS:
            cells = []
            for nodes in (2, 8, 16, 32):
                efficiency = step / (step + allreduce_seconds(parameters, nodes, bits, latency))
                cells.append(f"{100 * efficiency:10.1f} %")
            print(f"{name:6} {parameters / 1e6:7.1f}M {step:7.2f} {network:28} " + " ".join(cells))


if __name__ == "__main__":
    main()
