"""The exponent nu of frequency-scaled regularisation, lambda * n_u ** nu (Rendle, Krichene,
Zhang & Koren 2022, "Revisiting the Performance of iALS on Item Recommendation Benchmarks"),
measured on a run's own split.

Reads a warehouse a tuned run left (default ./data, e.g. `make lastfm`): fits its adopted
trial's settings on train with nu in {0, 0.5, 1} and lambda over several decades (nu changes
the scale of lambda, so each nu gets its own best lambda), and prints validation NDCG@50 (the
tuning metric) and precision@10 for each, best lambda per nu marked.

    .venv/bin/python benchmarks/reg_exponent.py [--data DIR]
"""

from dataclasses import replace

from _common import run_warehouse

from recsys_dagster.ml.als import ALSParams
from recsys_dagster.ml.als.confidence import ConfidenceParams
from recsys_dagster.ml.evaluation.evaluate import build_catalogue, fit_als, score_als
from recsys_dagster.ml.evaluation.tuning import apply

EXPONENTS = (0.0, 0.5, 1.0)
LAMBDAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def main() -> None:
    store, spark, split = run_warehouse()
    train, validation = split["train"].persist(), split["validation"].persist()
    best = store.manifest("als_tuning")["params"]["best"]["trial"]
    conf, als = apply(best, ConfidenceParams()), apply(best, ALSParams())
    cat = build_catalogue(train)
    print(f"{store.base_dir}: the adopted trial {best}; validation scores")
    print(f"  {'nu':>4s} {'lambda':>8s} {'ndcg@50':>8s} {'precision@10':>13s}")
    for nu in EXPONENTS:
        rows = []
        for lam in LAMBDAS:
            factors = fit_als(train, conf, replace(als, reg_param=lam, reg_exponent=nu),
                              cat.fit_rows)
            ndcg = score_als(factors, train, validation, cat, 50).toPandas().ndcg.mean()
            precision = score_als(factors, train, validation, cat, 10).toPandas().precision.mean()
            rows.append((lam, ndcg, precision))
        top = max(rows, key=lambda r: r[1])
        for lam, ndcg, precision in rows:
            mark = "  <- best lambda for this nu" if (lam, ndcg, precision) == top else ""
            print(f"  {nu:4.1f} {lam:8.2f} {ndcg:8.4f} {precision:13.4f}{mark}")


if __name__ == "__main__":
    main()
