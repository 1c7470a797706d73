"""Items CSVs given to `python -m deepalign.data validate`, directly or through a dataset
card (the card is where a user declares scales, thresholds and columns)."""

from __future__ import annotations

from audit.harness import Case, names_for

GOOD = "id,text,v\na,hug someone,1\nb,hit someone,2\nc,help someone,3\n"


def _case(id, body, *args, names=(), expect="refuse", file="items.csv", note=""):
    files = {} if body is None else {file: body}
    return Case(id, ("deepalign.data", "validate", file, *args), files=files,
                names=names_for(file, names), expect=expect, note=note)


def _rows(*rows: str) -> str:
    return "id,text,v\n" + "".join(row + "\n" for row in rows)


def _directory(path, fx):
    path.mkdir()


def _card(id, card, names=(), expect="refuse", file="card.yaml", note="", named=None):
    """A card beside GOOD's items.csv; a refusal names the card (or `named`, the file the
    error is about) and `names`."""
    return Case(id, ("deepalign.data", "validate", file),
                files={file: card, "items.csv": GOOD}, names=names_for(named or file, names),
                expect=expect, note=note)


CARD_CASES = [
    _card("card-valid", "items: items.csv\nscale: [0, 5]\n", expect="accept"),
    _card("card-valid-toml", 'items = "items.csv"\nscale = [0, 5]\n', file="card.toml",
          expect="accept"),
    _card("card-unknown-key", "itemz: items.csv\n", names=("itemz",)),
    _card("card-no-items", "scale: [0, 5]\n", names=("items",)),
    _card("card-items-missing", "items: nope.csv\n", names=("nope.csv",)),
    _card("card-scale-reversed", "items: items.csv\nscale: [5, 0]\n", names=("scale",)),
    _card("card-threshold-outside-scale", "items: items.csv\nscale: [0, 5]\nthreshold: 99\n",
          names=("threshold",), note="named no file before (ValueRatings: ...)"),
    _card("card-value-threshold-outside", "items: items.csv\nvalues: {v: {scale: [0, 5], "
          "threshold: 7}}\n", names=("threshold",)),
    _card("card-unknown-value", "items: items.csv\nvalues: [w]\n", names=("'w'",),
          named="items.csv", note="the header of items.csv lacks the column the card names"),
    _card("card-spread-column-missing", "items: items.csv\nvalues: {v: {scale: [0, 5], "
          "spread_column: sd}}\n", names=("'sd'",), named="items.csv"),
    _card("card-kind-bogus", "items: items.csv\nkind: dist\n", names=("kind",)),
    _card("card-similarity-missing", "items: items.csv\nsimilarity: sim.npy\n",
          names=("sim.npy",)),
    _card("card-duplicate-key", "items: items.csv\nitems: items.csv\n", names=("items",)),
    _card("card-a-list", "- items.csv\n"),
    _card("card-items-a-list", "items: [a, b]\n", names=("items",)),
    _card("card-text-column-number", "items: items.csv\ntext_column: 5\n",
          names=("text_column",)),
    _card("card-itself-as-items", "items: card.yaml\n"),
    _card("card-toml-syntax", 'items = "items.csv"\nscale = [0, 5\n', file="card.toml"),
    _card("card-yaml-payload", "items: !!python/object/apply:os.system ['touch PWNED']\n"),
    Case("card-with-options", ("deepalign.data", "validate", "card.yaml", "--scale", "0,5"),
         files={"card.yaml": "items: items.csv\n", "items.csv": GOOD},
         names=("card.yaml",), note="options beside a card are refused"),
]

CASES = [
    _case("valid", GOOD, "--scale", "0,5", expect="accept"),
    _case("valid-no-scale", GOOD, expect="accept", note="observed range, with a warning"),
    _case("empty-file", ""),
    _case("header-only", "id,text,v\n"),
    _case("blank-lines-only", "\n\n\n"),
    _case("no-text-column", "id,name,v\na,hug,1\nb,hit,2\n", names=("text",)),
    _case("duplicate-header", "id,text,text,v\na,hug,hug,1\nb,hit,hit,2\n",
          names=("text",)),
    _case("empty-header-name", "id,text,,v\na,hug,1,1\nb,hit,2,2\n"),
    _case("duplicate-id", _rows("a,hug someone,1", "a,hit someone,2")),
    _case("empty-id", _rows("a,hug someone,1", ",hit someone,2")),
    _case("empty-text", _rows("a,hug someone,1", "b,,2")),
    _case("blank-text", _rows("a,hug someone,1", "b,   ,2")),
    _case("duplicate-text", _rows("a,hug someone,1", "b,hug someone,2")),
    _case("too-few-cells", _rows("a,hug someone,1", "b,hit someone")),
    _case("too-many-cells", _rows("a,hug someone,1", "b,hit someone,2,9")),
    _case("word-rating", _rows("a,hug someone,1", "b,hit someone,two")),
    _case("nan-rating", _rows("a,hug someone,1", "b,hit someone,nan")),
    _case("inf-rating", _rows("a,hug someone,1", "b,hit someone,inf")),
    _case("overflow-rating", _rows("a,hug someone,1", "b,hit someone,1e999")),
    _case("underscore-digits", _rows("a,hug someone,1_2", "b,hit someone,2"),
          note="float() reads 1_2 as 12"),
    _case("arabic-indic-digits", _rows("a,hug someone,\u0661\u0662", "b,hit someone,2")),
    _case("fullwidth-digit", _rows("a,hug someone,\uff11", "b,hit someone,2")),
    _case("decimal-comma", _rows('a,hug someone,"1,5"', "b,hit someone,2")),
    _case("missing-rating", _rows("a,hug someone,", "b,hit someone,2")),
    _case("rating-outside-scale", _rows("a,hug someone,7", "b,hit someone,2"),
          "--scale", "0,5"),
    _case("scale-one-number", GOOD, "--scale", "5", names=("--scale",)),
    _case("scale-reversed", GOOD, "--scale", "5,0", names=("--scale",)),
    _case("scale-words", GOOD, "--scale", "low,high", names=("--scale",)),
    _case("scale-infinite", GOOD, "--scale", "0,inf", names=("--scale",)),
    _case("negative-scale-equals", _rows("a,hug someone,-3", "b,hit someone,2"),
          "--scale=-4,4", expect="accept"),
    _case("negative-scale-space", _rows("a,hug someone,-3", "b,hit someone,2"),
          "--scale", "-4,4", expect="accept"),
    _case("unknown-value-column", GOOD, "--value-columns", "w", names=("'w'",)),
    _case("unknown-text-column", GOOD, "--text-column", "words", names=("'words'",)),
    _case("unknown-id-column", GOOD, "--id-column", "key", names=("'key'",)),
    _case("nul-in-text", _rows("a,hug\x00someone,1", "b,hit someone,2")),
    _case("escape-in-text", _rows("a,hug\x1b[31msomeone,1", "b,hit someone,2")),
    _case("stray-quote", _rows('a,hug "someone,1', "b,hit someone,2")),
    _case("unclosed-quote", _rows('a,"hug someone,1', "b,hit someone,2")),
    _case("megabyte-cell", 'id,text,v\na,"' + "x" * 1_000_000 + '",1\nb,hit,2\n'),
    _case("semicolons", "id;text;v\na;hug someone;1\nb;hit someone;2\n"),
    _case("tabs", "id\ttext\tv\na\thug someone\t1\nb\thit someone\t2\n"),
    _case("latin-1-bytes", "id,text,v\na,caf\xe9 with friends,1\nb,hit,2\n".encode("latin-1")),
    _case("utf-16", GOOD.encode("utf-16")),
    _case("utf-8-bom", "\ufeff" + GOOD, expect="accept"),
    _case("crlf-lines", GOOD.replace("\n", "\r\n"), expect="accept"),
    _case("random-bytes", bytes(range(256)) * 4),
    _case("a-directory", _directory),
    _case("missing-file", None, names=("nothere.csv",), file="nothere.csv"),
    _case("spreadsheet", b"PK\x03\x04" + bytes(200), file="items.xlsx"),
]

CASES += CARD_CASES
