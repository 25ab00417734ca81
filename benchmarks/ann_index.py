"""Which approximate index for top-N by inner product: recall@20 against exact and query time,
on one seeded catalogue, in one run.

    python benchmarks/ann_index.py                    # 200 k items, 20 k queries, rank 32
    python benchmarks/ann_index.py --items 50000 --queries 5000

Candidates: faiss-cpu's HNSW graph searched by inner product (`IndexHNSWFlat`, METRIC_INNER_
PRODUCT; what `top_k.method: approximate` uses), the same graph over the Euclidean reduction
of inner product (Bachrach et al., "Speeding up the Xbox recommender system using a Euclidean
transformation for inner-product spaces", 2014: items get one more coordinate
sqrt(M^2 - |y|^2), queries a 0, so the nearest item in L2 is the best by inner product), an
inverted file (`IndexIVFFlat`, inner product, k-means cells), and hnswlib's HNSW when it is
installed (`pip install hnswlib`, a source build). Item vectors are Gaussian with log-normal
norms (popular items are long vectors, as in ALS factors), queries Gaussian with decaying
variance per dimension. Exact: the product with every item and a partial sort, in blocks.
Every index uses both cores; printed: build seconds, query seconds for all queries, recall@20
and the speed-up over exact, per search breadth.
"""

import argparse
import time

import numpy as np


def data(n_items: int, n_queries: int, rank: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    items = (rng.standard_normal((n_items, rank))
             * rng.lognormal(0.0, 0.6, (n_items, 1))).astype(np.float32)
    queries = (rng.standard_normal((n_queries, rank))
               * np.linspace(1.5, 0.3, rank)).astype(np.float32)
    return items, queries


def exact_top(items, queries, k, block=1000):
    return np.vstack([np.argpartition(-(queries[i:i + block] @ items.T), k, axis=1)[:, :k]
                      .copy() for i in range(0, len(queries), block)])


def recall(found, exact) -> float:
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)]))


def euclidean(items, queries):
    norms = np.linalg.norm(items, axis=1)
    top = norms.max()
    extra = np.sqrt(np.maximum(top * top - norms * norms, 0.0))[:, None]
    return (np.hstack([items, extra]).astype(np.float32),
            np.hstack([queries, np.zeros((len(queries), 1), np.float32)]))


def faiss_hnsw(items, degree, ef_construction, metric):
    import faiss

    index = faiss.IndexHNSWFlat(items.shape[1], degree, metric)
    index.hnsw.efConstruction = ef_construction
    index.add(items)

    def search(queries, k, ef):
        return index.search(queries, k, params=faiss.SearchParametersHNSW(efSearch=ef))[1]
    return search


def faiss_ivf(items, cells):
    import faiss

    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(items.shape[1]), items.shape[1], cells,
                               faiss.METRIC_INNER_PRODUCT)
    index.train(items)
    index.add(items)

    def search(queries, k, probes):
        index.nprobe = probes
        return index.search(queries, k)[1]
    return search


def hnswlib_ip(items, degree, ef_construction):
    import hnswlib

    index = hnswlib.Index(space="ip", dim=items.shape[1])
    index.init_index(len(items), M=degree, ef_construction=ef_construction, random_seed=1)
    index.add_items(items, num_threads=2)

    def search(queries, k, ef):
        index.set_ef(ef)
        return index.knn_query(queries, k=k, num_threads=2)[0]
    return search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(2)
    items, queries = data(args.items, args.queries, args.rank)
    clock = time.perf_counter()
    exact = exact_top(items, queries, args.k)
    exact_s = time.perf_counter() - clock
    print(f"exact: {exact_s:.1f} s for {args.queries} queries x {args.items} items, "
          f"rank {args.rank}")
    aug_items, aug_queries = euclidean(items, queries)
    candidates = [
        ("faiss HNSW inner product M16 efc100", lambda: faiss_hnsw(
            items, 16, 100, faiss.METRIC_INNER_PRODUCT), queries, (40, 80, 128, 160)),
        ("faiss HNSW inner product M32 efc200", lambda: faiss_hnsw(
            items, 32, 200, faiss.METRIC_INNER_PRODUCT), queries, (40, 80, 160)),
        ("faiss HNSW Euclidean reduction M16", lambda: faiss_hnsw(
            aug_items, 16, 100, faiss.METRIC_L2), aug_queries, (80, 160)),
        ("faiss IVF inner product 1024 cells", lambda: faiss_ivf(items, 1024), queries,
         (16, 64)),
    ]
    try:
        import hnswlib  # noqa: F401

        candidates += [("hnswlib inner product M16 efc100",
                        lambda: hnswlib_ip(items, 16, 100), queries, (40, 80, 128, 160))]
    except ImportError:
        print("(hnswlib not installed: pip install hnswlib to compare it)")
    print(f"{'index':40s} {'build s':>8s} {'breadth':>8s} {'query s':>8s} {'recall':>7s} "
          f"{'vs exact':>8s}")
    for name, build, q, breadths in candidates:
        clock = time.perf_counter()
        search = build()
        built = time.perf_counter() - clock
        for breadth in breadths:
            clock = time.perf_counter()
            found = search(q, args.k, breadth)
            secs = time.perf_counter() - clock
            print(f"{name:40s} {built:8.1f} {breadth:8d} {secs:8.2f} "
                  f"{recall(found, exact):7.4f} {exact_s / secs:7.1f}x", flush=True)


if __name__ == "__main__":
    main()
