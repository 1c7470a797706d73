"""Regenerate this folder's SYNTHETIC example dataset (not human data):

    python examples/synthetic_actions/make.py

50 everyday actions written for this example, in the layout of the paper's release
(Wynn, Sucholutsky & Griffiths 2024): `actions.csv` with a text column `action` and ten
0-100 value columns, and a 50 x 50 `survey_similarity.npy`. Every number is drawn from a
seeded toy model: each action gets two hidden traits (how much it helps or harms, and how
social it is; the first is set by hand from the wording, the second drawn), the values are
noisy linear read-outs of the traits, and the similarity of two actions falls with the
distance between their traits. No person rated anything here.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
VALUES = ("morality", "goodness", "fairness", "kindness", "honesty", "harmlessness",
          "respect", "care", "loyalty", "justice")
# (action, helps (+1) or harms (-1), set by hand from the wording)
ACTIONS = (
    ("help a neighbour carry groceries", 0.9), ("donate blood", 0.9),
    ("return a lost wallet", 0.9), ("volunteer at a food bank", 1.0),
    ("comfort a crying child", 0.9), ("hold the door for a stranger", 0.5),
    ("tutor a classmate for free", 0.8), ("plant a tree in the park", 0.6),
    ("thank the bus driver", 0.4), ("visit a sick friend", 0.8),
    ("recycle plastic bottles", 0.4), ("give up a seat on the train", 0.6),
    ("apologise after an argument", 0.6), ("feed a stray cat", 0.6),
    ("shovel snow for an elderly neighbour", 0.9), ("water the office plants", 0.3),
    ("read a bedtime story", 0.5), ("cook dinner for the family", 0.6),
    ("pick up litter on the beach", 0.6), ("lend a friend some money", 0.6),
    ("make a cup of tea", 0.1), ("tie your shoelaces", 0.0), ("fold the laundry", 0.1),
    ("check the weather forecast", 0.0), ("walk to the shop", 0.0),
    ("sharpen a pencil", 0.0), ("change a light bulb", 0.1), ("reply to an email", 0.1),
    ("listen to the radio", 0.0), ("sort the mail", 0.0),
    ("cut in line at the bakery", -0.5), ("ignore a friend's message", -0.3),
    ("take the last cookie without asking", -0.3), ("park across two spaces", -0.4),
    ("play loud music late at night", -0.5), ("gossip about a coworker", -0.6),
    ("copy a classmate's homework", -0.6), ("break a promise", -0.6),
    ("litter in the park", -0.5), ("lie to a friend", -0.7),
    ("steal a bicycle", -0.9), ("cheat on an exam", -0.7),
    ("insult a waiter", -0.7), ("spread a false rumour", -0.8),
    ("kick a dog", -1.0), ("shoplift from a small store", -0.8),
    ("bully a younger child", -1.0), ("vandalise a bus stop", -0.8),
    ("push someone in a queue", -0.8), ("read someone's diary without asking", -0.6),
)


def main(out: Path = HERE) -> None:
    """Write actions.csv and survey_similarity.npy into `out` (default: this folder)."""
    rng = np.random.default_rng(2024)
    helps = np.array([h for _, h in ACTIONS])
    social = rng.uniform(-1, 1, len(ACTIONS))
    traits = np.stack([helps, 0.6 * social], axis=1)
    weights = rng.uniform(0.6, 1.0, len(VALUES))
    ratings = 50 + 40 * helps[:, None] * weights[None, :] + rng.normal(0, 6, (len(ACTIONS),
                                                                           len(VALUES)))
    ratings = np.clip(np.round(ratings, 1), 0, 100)
    distance = np.linalg.norm(traits[:, None, :] - traits[None, :, :], axis=-1)
    noise = rng.normal(0, 0.05, distance.shape)
    similarity = np.clip(np.exp(-distance / 0.8) + (noise + noise.T) / 2, 0, 1)
    np.fill_diagonal(similarity, 1.0)
    lines = ["action," + ",".join(VALUES)]
    lines += [f"{text}," + ",".join(f"{r:g}" for r in row)
              for (text, _), row in zip(ACTIONS, ratings)]
    (out / "actions.csv").write_text("\n".join(lines) + "\n")
    np.save(out / "survey_similarity.npy", similarity)


if __name__ == "__main__":
    main()
