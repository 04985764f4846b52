"""Write the MiniLM text sets: calibration lines (shipped) and the held-out fidelity sets (tests).

Every sentence is generated here from hand-written word lists with fixed seeds (no text is
downloaded or copied), so the files are reproducible byte for byte:

    .venv/bin/python scripts/make_minilm_text.py

writes src/aicommons/demo/minilm_calib.txt (one calibration text a line), minilm_eval.txt (the
held-out `eval` set again, for `aic bench runtime`) and
tests/data/minilm_text.json ({"eval": [...], "queries": [...], "documents": [...]}). The held-out
sets never share a line with the calibration file (checked here). The embeddings of the held-out
sets are recorded once by sentence-transformers itself (scripts/record_minilm_reference.py).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CALIB_PATH = ROOT / "src" / "aicommons" / "demo" / "minilm_calib.txt"
EVAL_PATH = ROOT / "src" / "aicommons" / "demo" / "minilm_eval.txt"
TEXT_PATH = ROOT / "tests" / "data" / "minilm_text.json"
CALIB_SIZE = 64
EVAL_SIZE = 300
QUERY_SIZE = 100
DOCUMENT_SIZE = 200

TOPICS: dict[str, dict[str, list[str]]] = {
    "finance": {
        "who": [
            "the central bank",
            "a small lender",
            "the pension fund",
            "my accountant",
            "the treasury",
            "an index fund",
            "the credit union",
            "a hedge fund manager",
        ],
        "did": [
            "raised interest rates",
            "cut its fees",
            "reported a quarterly loss",
            "froze the account",
            "approved the mortgage",
            "flagged a suspicious transfer",
            "rebalanced the portfolio",
            "issued new bonds",
        ],
        "what": [
            "inflation",
            "the exchange rate",
            "a wire transfer of 9,800 dollars",
            "late payment penalties",
            "the savings account",
            "dividend income",
            "a refund request",
            "the annual budget",
        ],
    },
    "weather": {
        "who": [
            "the forecast",
            "a cold front",
            "the storm",
            "the weather service",
            "a heat wave",
            "the morning fog",
            "heavy snow",
            "the monsoon",
        ],
        "did": [
            "brought flooding to the valley",
            "closed the mountain pass",
            "delayed every flight",
            "broke a temperature record",
            "moved north overnight",
            "knocked out power lines",
            "cleared by noon",
            "lasted three days",
        ],
        "what": [
            "the harvest",
            "the coastal towns",
            "commuters",
            "the ski season",
            "outdoor concerts",
            "the river level",
            "air quality",
            "the school run",
        ],
    },
    "cooking": {
        "who": [
            "the chef",
            "my grandmother",
            "the bakery",
            "a food critic",
            "the recipe",
            "the street vendor",
            "our neighbour",
            "the cooking class",
        ],
        "did": [
            "roasted the vegetables slowly",
            "added too much salt",
            "baked sourdough before dawn",
            "served the soup cold",
            "used fresh basil",
            "let the dough rest overnight",
            "burnt the garlic",
            "grilled the fish whole",
        ],
        "what": [
            "the tomato sauce",
            "a lemon tart",
            "spicy noodles",
            "the crème brûlée",
            "rice with saffron",
            "a vegetarian curry",
            "the dumplings",
            "fresh pasta",
        ],
    },
    "sports": {
        "who": [
            "the goalkeeper",
            "the home team",
            "a young sprinter",
            "the coach",
            "the referee",
            "the marathon runner",
            "the tennis champion",
            "the rookie",
        ],
        "did": [
            "scored in the final minute",
            "was sent off",
            "broke the national record",
            "announced her retirement",
            "won on penalties",
            "injured his knee",
            "trained at altitude",
            "lost the semi-final",
        ],
        "what": [
            "the league title",
            "the world cup",
            "a close match",
            "the transfer window",
            "the Olympic trials",
            "the season opener",
            "extra time",
            "the derby",
        ],
    },
    "technology": {
        "who": [
            "the compiler",
            "our database",
            "the new phone",
            "a security patch",
            "the cloud provider",
            "the open-source library",
            "the search engine",
            "the smart thermostat",
        ],
        "did": [
            "crashed after the update",
            "leaked user passwords",
            "doubled its speed",
            "dropped support for old devices",
            "rejected the certificate",
            "ran out of memory",
            "indexed a billion pages",
            "lost the connection",
        ],
        "what": [
            "the login page",
            "a memory leak",
            "battery life",
            "the API keys",
            "encrypted backups",
            "the neural network",
            "latency spikes",
            "the source code",
        ],
    },
    "health": {
        "who": [
            "the nurse",
            "a family doctor",
            "the clinic",
            "the vaccine trial",
            "a physiotherapist",
            "the pharmacy",
            "the hospital",
            "the patient",
        ],
        "did": [
            "prescribed antibiotics",
            "recommended more sleep",
            "reported fewer side effects",
            "extended its opening hours",
            "measured her blood pressure",
            "ran out of flu shots",
            "recovered after surgery",
            "cancelled the appointment",
        ],
        "what": [
            "a sore throat",
            "back pain",
            "the allergy season",
            "vitamin D",
            "high cholesterol",
            "a sprained ankle",
            "seasonal flu",
            "the waiting list",
        ],
    },
    "travel": {
        "who": [
            "the airline",
            "our tour guide",
            "the night train",
            "a backpacker",
            "the hotel",
            "the ferry",
            "the border guard",
            "the taxi driver",
        ],
        "did": [
            "lost my suitcase",
            "upgraded us for free",
            "arrived two hours late",
            "checked every passport",
            "was fully booked",
            "cancelled the connection",
            "took the scenic route",
            "charged a hidden fee",
        ],
        "what": [
            "the museum in Zürich",
            "a beach near Lisbon",
            "the old town of Kraków",
            "a trip to Tōkyō",
            "the visa application",
            "cheap flights",
            "the mountain hostel",
            "a lost passport",
        ],
    },
    "science": {
        "who": [
            "the telescope",
            "a chemist",
            "the research team",
            "the particle detector",
            "a marine biologist",
            "the climate model",
            "the lab",
            "the rover",
        ],
        "did": [
            "found water ice",
            "measured the decay rate",
            "sequenced the genome",
            "observed a distant galaxy",
            "failed to replicate the result",
            "published the data",
            "tagged migrating whales",
            "drilled into the crater",
        ],
        "what": [
            "dark matter",
            "coral reefs",
            "the enzyme",
            "quantum entanglement",
            "the ozone layer",
            "ancient bacteria",
            "solar flares",
            "the fossil record",
        ],
    },
    "law": {
        "who": [
            "the court",
            "the defence lawyer",
            "a judge",
            "the regulator",
            "the jury",
            "the city council",
            "the landlord",
            "the tax office",
        ],
        "did": [
            "dismissed the case",
            "appealed the ruling",
            "fined the company",
            "signed the contract",
            "delayed the hearing",
            "changed the zoning rules",
            "raised the rent",
            "opened an investigation",
        ],
        "what": [
            "the privacy law",
            "a patent dispute",
            "the tenancy agreement",
            "copyright claims",
            "the merger",
            "parking fines",
            "the will",
            "data protection",
        ],
    },
    "music": {
        "who": [
            "the orchestra",
            "a jazz pianist",
            "the band",
            "the choir",
            "the festival",
            "a street musician",
            "the conductor",
            "the record label",
        ],
        "did": [
            "sold out the arena",
            "released a new album",
            "cancelled the tour",
            "played until midnight",
            "tuned the violins",
            "won a grammy",
            "recorded in a church",
            "split after ten years",
        ],
        "what": [
            "the symphony",
            "an old folk song",
            "the vinyl edition",
            "the opening night",
            "a drum solo",
            "the streaming charts",
            "the encore",
            "the rehearsal",
        ],
    },
}

WHEN = [
    "yesterday",
    "last week",
    "on Monday",
    "this morning",
    "in 2019",
    "after lunch",
    "before the holidays",
    "at 7:45 pm",
    "for the third time",
    "again",
]
OPINION = [
    "I think",
    "Honestly,",
    "Apparently",
    "According to the news,",
    "To be fair,",
    "Surprisingly,",
    "As expected,",
    "Unfortunately",
    "Good news:",
    "Rumour has it",
]
QUESTION = [
    "Why did",
    "When exactly did",
    "Is it true that",
    "How often has",
    "Who said",
    "Does anyone know why",
]
EXTRA = [
    "and nobody was surprised",
    "which cost about €1,200",
    "despite the warnings",
    "while everyone watched",
    "so we went home early",
    "but the reasons are unclear",
    "according to two witnesses",
    "even though it was Sunday",
    "and the results were mixed",
    "which made the headlines 🙂",
]
SHORT = [
    "ok",
    "thanks!",
    "see you tomorrow",
    "no idea",
    "what a day",
    "lol",
    "¿qué pasa?",
    "bonne nuit",
    "error 404",
    "pizza tonight?",
    "10/10 would recommend",
    "hmm.",
]


def sentence(rng: random.Random) -> str:
    """One sentence of a random topic in one of several forms (statement, question, fragment,
    long compound sentence), with occasional numbers, accents and emoji."""
    topic = TOPICS[rng.choice(sorted(TOPICS))]
    who, did, what = (rng.choice(topic[key]) for key in ("who", "did", "what"))
    form = rng.random()
    if form < 0.08:
        return rng.choice(SHORT)
    if form < 0.35:
        text = f"{who} {did} {rng.choice(WHEN)}."
    elif form < 0.5:
        text = f"{rng.choice(QUESTION)} {who} {did.split(' ', 1)[0]} {what}?"
    elif form < 0.65:
        text = f"{rng.choice(OPINION)} {who} {did} because of {what}."
    elif form < 0.8:
        text = f"{what}: {who} {did} {rng.choice(WHEN)}, {rng.choice(EXTRA)}."
    else:
        # Long: two to six clauses from any topics, to reach and pass 128 tokens now and then.
        parts = []
        for _ in range(rng.randint(2, 6 if rng.random() < 0.8 else 14)):
            other = TOPICS[rng.choice(sorted(TOPICS))]
            parts.append(
                f"{rng.choice(other['who'])} {rng.choice(other['did'])} "
                f"{rng.choice(WHEN)}, {rng.choice(EXTRA)}"
            )
        text = "; ".join(parts) + "."
    text = text[0].upper() + text[1:]
    if rng.random() < 0.05:
        text = text.upper()
    return text


def document(rng: random.Random, topic_name: str) -> str:
    """A short passage of two or three sentences about one topic (the retrieval corpus)."""
    topic = TOPICS[topic_name]
    lines = []
    for _ in range(rng.randint(2, 3)):
        who, did, what = (rng.choice(topic[key]) for key in ("who", "did", "what"))
        lines.append(f"{who[0].upper()}{who[1:]} {did} {rng.choice(WHEN)}, affecting {what}.")
    return " ".join(lines)


def query(rng: random.Random, topic_name: str) -> str:
    """A search query about one topic: a question or a few keywords."""
    topic = TOPICS[topic_name]
    who, did, what = (rng.choice(topic[key]) for key in ("who", "did", "what"))
    if rng.random() < 0.5:
        return f"{rng.choice(QUESTION)} {who} {did.split(' ', 1)[0]} {what}?"
    return f"{what} {did.split(' ', 1)[0]} {who.split(' ')[-1]}"


def unique(generate, count: int, seen: set[str]) -> list[str]:
    """`count` new lines from `generate`, none in `seen` (which grows)."""
    lines: list[str] = []
    while len(lines) < count:
        line = generate()
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def main() -> None:
    seen: set[str] = set()
    calib_rng = random.Random(20261202)
    calibration = unique(lambda: sentence(calib_rng), CALIB_SIZE, seen)
    eval_rng = random.Random(31)
    held_out = unique(lambda: sentence(eval_rng), EVAL_SIZE, seen)
    topics = sorted(TOPICS)
    doc_rng = random.Random(47)
    documents = unique(lambda: document(doc_rng, doc_rng.choice(topics)), DOCUMENT_SIZE, seen)
    query_rng = random.Random(59)
    queries = unique(lambda: query(query_rng, query_rng.choice(topics)), QUERY_SIZE, seen)
    assert not set(calibration) & set(held_out + documents + queries)
    CALIB_PATH.write_text("\n".join(calibration) + "\n", encoding="utf-8")
    EVAL_PATH.write_text("\n".join(held_out) + "\n", encoding="utf-8")
    text = {"eval": held_out, "queries": queries, "documents": documents}
    TEXT_PATH.write_text(json.dumps(text, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {CALIB_PATH} ({len(calibration)} lines) and {TEXT_PATH}")


if __name__ == "__main__":
    main()
