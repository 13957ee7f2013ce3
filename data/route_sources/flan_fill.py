"""Fill FLAN's instruction templates (google-research/FLAN flan/templates.py, Apache-2.0) into prompts.

The templates are FLAN's own phrasings; only the slots ({text}, {sent1}, {lang2}, ...) are filled,
from the passages of raw/dolly.jsonl and a few fill-in lists below. Writes raw/flan.jsonl with the
FLAN task name as the category. Deterministic (fixed seed):

    python data/route_sources/flan_fill.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).parent

# (FLAN task, templates): the input side of FLAN's templates, verbatim.
TEMPLATES = {
    "cnn_dailymail": ["Write highlights for this article:\n\n{text}", "Write some highlights for the following article:\n\n{text}",
                      "{text}\n\nWrite highlights for this article.", "{text}\n\nWhat are highlight points for this article?",
                      "{text}\nSummarize the highlights of this article.", "{text}\nWhat are the important parts of this article?"],
    "gigaword": ["Write a short summary for this text: {text}", "Briefly summarize this sentence: {text}",
                 "Generate a short summary this sentence:\n{text}", "What is a shorter version of this:\n\n{text}",
                 "{text}\n\nWrite a brief summary in a sentence or less", "{text}\n\nWhat is a very short summary of the above text?",
                 "{text}\nSummarize the aforementioned text in a single phrase.", "{text}\nCan you generate a short summary of the above paragraph?"],
    "multi_news": ["Summarize this article:\n\n{text}", "Write a summary based on this article:\n\n{text}",
                   "Article:\n\n{text}\nWhat is a summary?", "{text}\nWhat is a one-paragraph summary of the above article?",
                   "Here is a news article: {text}\nA summary of this is?", "News article:\n\n{text}\nWhat is a shorter version of the above article?",
                   "{text}\n\nWrite a summary."],
    "newsroom": ["{title}\n\n{text}\n\nWrite a one or two sentence summary.", "Please write a short summary for the following article:\n\n{title}\n\n{text}",
                 "Please briefly summarize this news article:\n\n{title}\n\n{text}", "{title}\n{text}\nWhat is a short summary of the above article?",
                 "{title}\n\n{text}\nWhat are the most important parts of this text?"],
    "samsum": ["{dialogue}\n\nBriefly summarize that dialogue.", "Here is a dialogue:\n{dialogue}\n\nWrite a short summary!",
               "Dialogue:\n{dialogue}\n\nWhat is a summary of this dialogue?", "{dialogue}\n\nWhat was that dialogue about, in two sentences or less?",
               "Dialogue:\n{dialogue}\nWhat were the main points in that conversation?"],
    "xsum": ["Summarize:\n\n{text}", "Summarize this article in one sentence.\n\n{text}", "{text}\nWhat is a summary of this text?",
             "Article:{text}\n\nA summary of the above article is?", "Article:{text}\n\nSummarize the main points of that article."],
    "wiki_lingua": ["Summarize the following:\n{text}", "What is a one-sentence summary of the following article?\n{text}",
                    "In one sentence, describe what the following article is about:\n\n{text}"],
    "para_crawl": ["How do you say \"{sent1}\" in {lang2}?", "{sent2} How do you say this sentence in English?", "{sent1} Say this using {lang2}",
                   "Translate from English to {lang2}:\n\n{sent1}", "Translate from {lang3} to English:\n\n{sent2}",
                   "Translate \"{sent2}\" from {lang3} to English.", "Translate \"{sent1}\" to {lang2}.",
                   "Translate the following.\n\nEnglish: {sent1}\n\n{lang2}:"],
    "wmt16_translate": ["{sent1}\n\nTranslate to {lang2}", "{sent2}\n\nTranslate to English", "{sent2}\n\nCould you please translate this to English?",
                        "{sent2}\n\nTranslate this to English?", "Translate to {lang2}:\n\n{sent1}", "Translate the following sentence to {lang2}:\n{sent1}",
                        "How is \"{sent1}\" said in {lang2}?", "Translate \"{sent1}\" to {lang2}?"],
    "aeslc_write": ["Write an email with the following subject:\n\n{subject}", "Write an email with the subject line \"{subject}\"."],
    "cnn_write": ["Write an article using the following points:\n\n{highlights}", "Use the following highlights to write an article:\n\n{highlights}",
                  "{highlights}\n\nWrite an article based on these highlights."],
    "xsum_write": ["Write an article based on this summary:\n\n{summary}", "Write an article based on this \"{summary}\""],
    "newsroom_write": ["Write an article with the title: \"{title}\""],
    "review_write": ["Write a {polarity} movie review.", "Generate a movie review with {polarity} sentiment.",
                     "Write a {polarity} yelp review.", "Generate a {polarity} review for a place.",
                     "Generate a short movie review that has {polarity} sentiment."],
    "tweet_write": ["Write a tweet that is {polarity}.", "Write a {polarity} tweet.", "Generate a tweet that has the following sentiment: {polarity}"],
    "story_write": ["Write a story that ends with this sentence.\n\n{sentence}",
                    "Write a plausible story that ends with this sentence?\n\nLast sentence: {sentence}",
                    "Continue the following story.\n\n{sentence}", "Continue writing the following text.\n\n{sentence}"],
    "samsum_write": ["Write a dialog about anything you want", "Write a dialog based on this summary:\n{summary}.",
                     "Write a dialog with this premise \"{summary}\"."],
    "fix_punct": ["{no_punct}\n\nAdd punctuation", "{no_punct}\n\nCan you repeat this sentence, but add in punctuation?",
                  "{no_punct}\n\nPlease fix the punctuation.", "{no_punct}\n\nCould you correct the punctuation please?",
                  "Please add punctuation to this: {no_punct}", "Generate a correctly punctuated version of the following text: {no_punct}"],
    "true_case": ["{lower}\n\nPlease write the text above using proper case.", "{lower}\n\nHow would the previous sentence be correctly capitalized?",
                  "{lower}\nCan you repeat this sentence, but capitalize it correctly?", "{lower}\n\nThis is all lower case. Can you fix that?",
                  "Please capitalize where necessary: {lower}"],
    "math_dataset": ["{question}", "Solve this math problem\n\n{question}", "What is the solution?\n\n{question}", "Math Problem\n{question}",
                     "Write down the solution for this math problem: {question}", "What is the solution to this math problem?\n{question}",
                     "Math problem: {question}\nWhat is the solution?", "{question}\nSolve this problem.",
                     "Problem: {question}\nAnd the answer is...", "{question}. What is the answer??"],
}

# FLAN tasks added later, filled with their own random stream so the prompts above stay as they were.
# squad_v1: a question about a pasted passage (the passage informs, the question decides: knowledge);
# dart, web_nlg_en, common_gen: write from pasted data or keywords (functional writing with material).
MORE_TEMPLATES = {
    "squad_v1": ["Please answer a question about the following article about {title}:\n\n{context}\n\n{question}",
                 "Read this and answer the question\n\n{context}\n\n{question}", "{context}\n{question}",
                 "Answer a question about this article:\n{context}\n{question}",
                 "Here is a question about this article: {context}\nWhat is the answer to this question: {question}",
                 "Article: {context}\n\nQuestion: {question}", "Article: {context}\n\nNow answer this question: {question}",
                 "{title}\n{context}\n\nQ: {question}"],
    "dart": ["Triple: {tripleset}\n\nWhat is a sentence that describes this triple?",
             "Data: {tripleset}\n\nWhat would a sentence about this data be like?",
             "Generate an approximately fifteen-word sentence that describes all this data: {tripleset}\n\n",
             "Here is some data: {tripleset}.\n\nWrite a sentence that describes this data:",
             "This is some data: {tripleset}.\n\nGenerate a detailed description of this data.",
             "Generate a sentence about this data: {tripleset}\nSentence:", "Write a sentence that about [{tripleset}].",
             "Produce a long descriptive sentence that uses all these words: {tripleset}"],
    "web_nlg_en": ["{input_string}\n\nWhat is sentence that verbalizes this data?",
                   "Data: {input_string}\n\nSentence about the following data: ",
                   "Here is some data: {input_string}.\n\nWrite a sentence that describes this data.\nSentence:",
                   "This is some data: {input_string}.\n\nGenerate a detailed description of this data.\nSentence:",
                   "Generate a sentence about this data: {input_string}.\nSentence:",
                   "Generate a sentence that describes the following data: {input_string}.\nSentence:",
                   "Produce a long descriptive sentence that uses all these words: {input_string}.\nSentence:",
                   "Generate an approximately fifteen-word sentence that describes all this data: {input_string}.\nSentence:"],
    "common_gen": ["Concepts: {concepts}\n\nWrite a sentence that includes all these words.",
                   "Keywords: {concepts}\n\nWhat is a sentence that includes all these keywords?",
                   "Here are some concepts: {concepts}\n\nWhat is a sentence about these concepts?",
                   "Produce a sentence which mentions all of these concepts: {concepts}",
                   "Write a sentence about the following things:\n\n{concepts}",
                   "Generate a sentence that includes all the following words: {concepts}"],
}
ORIGINAL_DOLLY = 132
"""The first TEMPLATES fills drew on the first 132 Dolly records; later additions to the Dolly extract
do not reshuffle them."""

REPEATS = {"para_crawl": 3, "wmt16_translate": 3, "newsroom_write": 3, "aeslc_write": 3}
"""Fillings per template (default 2), so each route gets a few dozen prompts."""

# Fill-in values written here (not from FLAN): target languages of WMT'16 and short non-English sentences.
LANGS = ["German", "French", "Spanish", "Czech", "Romanian", "Russian", "Finnish", "Turkish"]
FOREIGN = [
    ("German", "Der Zug nach Berlin hat heute eine Stunde Verspätung."),
    ("German", "Wir haben das Angebot sorgfältig geprüft und nehmen es gerne an."),
    ("French", "Le conseil municipal a voté la rénovation de la bibliothèque."),
    ("French", "Pouvez-vous m'envoyer le rapport avant vendredi ?"),
    ("Spanish", "El museo estará cerrado durante las obras de verano."),
    ("Spanish", "Necesitamos más tiempo para terminar el proyecto."),
    ("Czech", "Zítra bude v Praze pršet a bude chladno."),
    ("Romanian", "Guvernul a anunțat noi măsuri pentru economie."),
    ("Russian", "Встреча перенесена на следующую неделю."),
    ("Finnish", "Kokous alkaa kello yhdeksän huomenna aamulla."),
    ("Turkish", "Toplantı yarın sabah saat dokuzda başlayacak."),
    ("German", "Die Ergebnisse der Studie wurden gestern veröffentlicht."),
]
# Data-to-text slots written here, in the formats of DART (subject | relation | object triples) and WebNLG.
TRIPLESETS = [
    "[The Golden Curry | food | Italian], [The Golden Curry | customer rating | 5 out of 5], [The Golden Curry | near | Café Rouge]",
    "[Mars Hill College | JOINED | 1973], [Mars Hill College | LOCATION | Mars Hill, North Carolina]",
    "[Alimentum | priceRange | less than £20], [Alimentum | area | city centre], [Alimentum | familyFriendly | yes]",
    "[Riverside Library | OPENED | 1962], [Riverside Library | BOOKS | 80,000], [Riverside Library | CITY | Leeds]",
    "[Bamboo toothbrush | MATERIAL | bamboo], [Bamboo toothbrush | PRICE | $4], [Bamboo toothbrush | FEATURE | compostable handle]",
    "[Lake Tahoe | ELEVATION | 1,897 m], [Lake Tahoe | STATE | California and Nevada]",
]
WEB_NLG = [
    "Abilene,_Texas | cityServed | Abilene_Regional_Airport",
    "Aarhus_Airport | runwayLength | 2776.0 && Aarhus_Airport | location | Tirstrup",
    "Alan_Bean | occupation | Test_pilot && Alan_Bean | birthPlace | Wheeler,_Texas",
    "Amatriciana_sauce | country | Italy && Amatriciana_sauce | ingredient | Guanciale",
    "Ajax_Amsterdam | ground | Amsterdam_Arena && Amsterdam_Arena | capacity | 53052",
]
CONCEPTS = ["dog, frisbee, catch, throw", "kitchen, cook, dinner, family", "mountain, climb, snow, summit",
            "market, fruit, sell, morning", "train, station, wait, rain", "guitar, stage, crowd, play"]
SUBJECTS = ["Meeting moved to Friday", "Q3 budget review", "Welcome to the team", "Server maintenance this weekend",
            "Invoice 4471 overdue", "Thank you for your help", "Updated travel policy", "Lunch next week?"]
DIALOGUES = [
    "Anna: Are you coming to the match tonight?\nTom: Can't, I have to finish the report.\nAnna: Shame! Next week then?\nTom: Sure, next week.",
    "Mike: The printer on floor 2 is broken again.\nSue: I'll call the technician.\nMike: Thanks, I need it by noon.\nSue: He says he can come at 11.",
    "Jen: Did you book the restaurant?\nLeo: Yes, 8 pm for six people.\nJen: Great, I'll tell the others.\nLeo: Remind them it's cash only.",
    "Kate: My flight is delayed by three hours.\nSam: Oh no. Should I still pick you up?\nKate: Yes please, I'll text you when I land.",
]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 40 <= len(s.strip()) <= 170]


def main() -> None:
    rng = random.Random(7)
    dolly = [json.loads(line) for line in (HERE / "raw" / "dolly.jsonl").open(encoding="utf-8")]
    passages = [r["prompt"].split("\n\n", 1)[1] for r in dolly[:ORIGINAL_DOLLY]
                if "\n\n" in r["prompt"] and len(r["prompt"]) > 300]
    sentences = [s for p in passages for s in _sentences(p)]
    rows = []
    for task, templates in TEMPLATES.items():
        for template in templates:
            for _ in range(REPEATS.get(task, 2)):
                text = rng.choice(passages)
                lang3, sent2 = rng.choice(FOREIGN)
                sent = rng.choice(sentences)
                slots = {
                    "text": text, "title": " ".join(text.split()[:6]).rstrip(",.;:"), "dialogue": rng.choice(DIALOGUES),
                    "sent1": sent, "sent2": sent2, "lang2": rng.choice(LANGS), "lang3": lang3,
                    "subject": rng.choice(SUBJECTS), "highlights": "\n".join(rng.sample(sentences, 3)), "summary": sent.rstrip("."),
                    "polarity": rng.choice(["positive", "negative"]), "sentence": sent,
                    "no_punct": re.sub(r"[^\w\s]", "", sent), "lower": sent.lower(), "question": _math_question(rng),
                }
                rows.append({"prompt": template.format(**slots), "category": task})
    rows += _more_rows(dolly)
    with (HERE / "raw" / "flan.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    print(f"wrote {len(rows)} prompts to raw/flan.jsonl")


def _more_rows(dolly: list[dict]) -> list[dict]:
    """MORE_TEMPLATES filled: squad_v1 with Dolly's own questions about a passage, the rest from the lists above."""
    rng = random.Random(11)
    qa = [r["prompt"].split("\n\n", 1) for r in dolly if r["category"] in ("closed_qa", "information_extraction")
          and not r.get("dropped") and "\n\n" in r["prompt"]]
    rows = []
    for task, templates in MORE_TEMPLATES.items():
        for template in templates:
            for _ in range(2):
                question, context = rng.choice(qa)
                slots = {"question": question, "context": context, "title": " ".join(context.split()[:3]).rstrip(",.;:("),
                         "tripleset": rng.choice(TRIPLESETS), "input_string": rng.choice(WEB_NLG),
                         "concepts": rng.choice(CONCEPTS)}
                rows.append({"prompt": template.format(**slots).strip(), "category": task})
    return rows


def _math_question(rng: random.Random) -> str:
    """A question in the style of DeepMind's mathematics_dataset (FLAN's math_dataset task)."""
    a, b, c = rng.randint(2, 60), rng.randint(-300, 300), rng.randint(2, 9)
    v = rng.choice("xyzrtkbq")
    x = rng.randint(-20, 20)
    forms = [
        f"Solve {a}*{v} + {b} = {a * x + b} for {v}.",
        f"Solve {-a}*{v} - {abs(b)} = {-a * x - abs(b)} for {v}.",
        f"What is the remainder when {a * 37 + c} is divided by {a}?",
        f"Calculate ({b})/({c})*{c * 3}/{-6}.",
        f"Let f({v}) = {c}*{v}**2 - {a}. What is f({x})?",
        f"What is {a}/{c * 4} of {c * 4 * 10}?",
        f"Is {a * c + 1} a prime number?",
        f"Round {b * 1.37 + 0.418:.4f} to one decimal place.",
    ]
    return rng.choice(forms)


if __name__ == "__main__":
    main()
