"""Options of `python -m deepalign.bandit` (not one of issue 16's six surfaces: the encoder
directories above go through it, and a user's first command often is it)."""

from __future__ import annotations

from audit.harness import Case

QUICK = ("deepalign.bandit", "--seeds", "1", "--horizon", "3", "--no-progress")
ITEMS = "id,text,v\na,hug someone,1\nb,hit someone,2\nc,help someone,3\nd,eat lunch,4\n"


def _case(id, *args, names=(), expect="refuse", files=None, note=""):
    return Case(id, (*QUICK, *args), files=files or {},
                names=names or tuple(a for a in args[:1] if a.startswith("--")), expect=expect,
                note=note)


CASES = [
    _case("valid", expect="accept"),
    _case("valid-user-csv", "--dataset", "items.csv", "--kernel", "length",
          files={"items.csv": ITEMS}, expect="accept"),
    _case("seeds-zero", "--seeds", "0"),
    _case("seeds-billion", "--seeds", "1000000000", note="ran for ever"),
    _case("horizon-zero", "--horizon", "0"),
    _case("horizon-1e12", "--horizon", "1000000000000", note="tried to allocate 8 TB"),
    _case("horizon-word", "--horizon", "x"),
    _case("first-seed-negative", "--first-seed", "-3"),
    _case("split-seed-negative", "--split-seed", "-1"),
    _case("noise-negative", "--noise-sd", "-1", names=("noise_sd",)),
    _case("noise-nan", "--noise-sd", "nan", names=("noise_sd",)),
    _case("value-unknown", "--value", "nope", names=("nope",)),
    _case("kernel-unknown", "--kernel", "bert"),
    _case("kernel-twice", "--kernel", "human", "human"),
    _case("agent-unknown", "--agent", "gp-thompson"),
    _case("epsilon-above-one", "--epsilon", "2"),
    _case("beta-negative", "--agent", "gp-ucb", "--beta", "-1", names=("--beta",)),
    _case("beta-infinite", "--beta", "inf"),
    _case("prior-sd-infinite", "--prior-sd-fraction", "inf", names=("prior_sd_fraction",)),
    _case("refit-without-botorch", "--refit-every", "5", names=("--refit-every",)),
    _case("json-a-directory", "--json", "."),
    _case("json-missing-directory", "--json", "no/such/out.json"),
    _case("dataset-missing-csv", "--dataset", "nope.csv", names=("nope.csv",)),
    _case("human-without-similarity", "--kernel", "human", "--dataset", "act-behaviors",
          names=("human", "act-behaviors")),
    _case("similarity-without-csv", "--similarity", "sim.npy", names=("similarity",)),
]
