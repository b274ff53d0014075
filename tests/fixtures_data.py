"""Writers of small, invented Rotten Tomatoes-style files in every format the readers know.

``write_rt_fixtures(tmp_path)`` lays out a mirror like the real data dir, with the nasty cases
the real data has (mojibake, empty quotes, "none" and stray labels, bad bytes, short rows,
lower-cased duplicate titles, Pang & Lee tokens). Three titled movies ("Toy Story",
"The Matrix", "Gigli") each get positive and negative reviews from named critics and
publications, so end-to-end ingest, retrieval and chat tests can reuse it.
``FIXTURE_STATS`` says what reading each file must count.
"""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

MOVIES = ("Toy Story", "The Matrix", "Gigli")

# key -> (rows, kept, skipped by reason); the keys are those of write_rt_fixtures' result.
FIXTURE_STATS: dict[str, tuple[int, int, dict[str, int]]] = {
    "critics": (17, 15, {"empty text": 1, "malformed row": 1}),
    "critics_2020": (6, 6, {}),
    "kaggle_reviews": (9, 7, {"empty text": 1, "unknown label": 1}),
    "kaggle_movies": (4, 3, {"missing movie": 1}),
    "flatiron_reviews": (8, 6, {"empty text": 1, "malformed row": 1}),
    "flatiron_movies": (3, 2, {"empty text": 1}),
    "polarity_pos": (4, 4, {}),
    "polarity_neg": (3, 3, {}),
    "freshness": (7, 4, {"unknown label": 1, "bad encoding": 1, "empty text": 1}),
    "top_movies": (4, 3, {"duplicate": 1}),
    "csv": (4, 2, {"unknown label": 1, "malformed row": 1}),
}
CSV_MAPPING = "text=Words,sentiment=Verdict,movie=Film,critic=Critic,publication=Outlet,labels=words"

CRITICS_HEADER = ["critic", "fresh", "imdb", "publication", "quote", "review_date", "rtid", "title"]
TOY, MATRIX, GIGLI = ("0114709", "9559", "Toy Story"), ("0133093", "12897", "The Matrix"), ("0299930", "13124", "Gigli")
SHARED_QUOTE = "A joyous, inventive adventure that treats its toys with real tenderness."
MOJIBAKE_QUOTE = "Itâ€™s the rare family film whose jokes land for parents and kids alike."

CRITICS_2013 = [
    ("Ada Lumen", "fresh", TOY, "Evening Ledger", SHARED_QUOTE, "2008-08-31"),
    ("Basil Thorne", "fresh", TOY, "Northern Film Weekly", MOJIBAKE_QUOTE, "2009-10-04"),
    ("Cora Vance", "fresh", TOY, "The Daily Reel",
     "Witty, warm and astonishingly animated &amp; never condescending.", "1800-01-01"),
    ("Dev Okafor", "rotten", TOY, "Metro Screen", "The buddy-comedy plot is thinner than the pixels suggest.",
     "2000-01-01"),
    ("Elsa Marsh", "rotten", TOY, "Cinema Quarterly",
     "Clever, but the relentless pace left me exhausted rather than delighted.", "2011-09-07"),
    ("Finn Rowe", "fresh", TOY, "Evening Ledger", "", "2011-09-07"),
    ("Gus Hale", "none", TOY, "Weekend Review", "A landmark in animation, whatever one thinks of the story.",
     "2003-05-20"),
    ("Ada Lumen", "fresh", MATRIX, "Evening Ledger",
     "A dazzling fusion of kung fu, cyberpunk and philosophy that rewires the action movie.", "1999-03-31"),
    ("Ivo Brandt", "fresh", MATRIX, "Pacific Screen", "Slick, smart and thrilling from its first rooftop chase.",
     "1999-04-02"),
    ("Cora Vance", "fresh", MATRIX, "The Daily Reel",
     "Keanu Reeves finds the perfect role as a hacker who wakes up to a stranger world.", "1999-04-01"),
    ("Dev Okafor", "rotten", MATRIX, "Metro Screen", "All style and pseudo-profundity; the dialogue lands with a thud.",
     "1999-04-05"),
    ("Elsa Marsh", "rotten", MATRIX, "Cinema Quarterly",
     "Its bullet-time tricks cannot hide a story that runs out of ideas.", "1999-04-06"),
    ("Basil Thorne", "rotten", GIGLI, "Northern Film Weekly",
     "A baffling, tone-deaf romance with no chemistry between its stars.", "2003-08-01"),
    ("Ivo Brandt", "rotten", GIGLI, "Pacific Screen",
     "Painfully long and painfully unfunny, a career low for everyone involved.", "2003-08-01"),
    ("Finn Rowe", "rotten", GIGLI, "Evening Ledger",
     "The script seems to have been written on a napkin during a lunch break.", "2003-08-02"),
    ("Gus Hale", "fresh", GIGLI, "Weekend Review",
     "Odd and occasionally charming, it is better than its reputation suggests.", "2003-08-03"),
]
CRITICS_2020 = [
    ("Ada Lumen", "fresh", TOY, "Evening Ledger", SHARED_QUOTE, "2019-12-31"),
    ("Juno Park", "fresh", TOY, "Stream Scene", "Still the gold standard for computer animation, decades on.",
     "2018-11-29"),
    ("Juno Park", "rotten", MATRIX, "Stream Scene",
     "Overrated then and overrated now: a video game with a philosophy degree.", "2018-03-20"),
    ("Kai Soto", "fresh", MATRIX, "The Projectionist", "A genre landmark that still feels new.", "2017-06-01"),
    ("Kai Soto", "rotten", GIGLI, "The Projectionist", "Even its stars look like they would rather be elsewhere.",
     "2017-06-02"),
    ("Juno Park", "fresh", GIGLI, "Stream Scene", "A misunderstood oddity with a few genuinely funny scenes.",
     "2018-04-01"),
]

KAGGLE_REVIEWS_HEADER = ["rotten_tomatoes_link", "critic_name", "top_critic", "publisher_name", "review_type",
                         "review_score", "review_date", "review_content"]
KAGGLE_REVIEWS = [
    ("m/toy_story", "Laila Noor", "True", "Sun Courier", "Fresh", "4/5", "2010-02-06",
     "Pixar's debut feature is a triumph of imagination."),
    ("m/toy_story", "Omar Reyes", "False", "Reel Talk", "Rotten", "2/5", "2010-02-07",
     "Charming enough, but the songs get in the way."),
    ("m/the_matrix", "Laila Noor", "True", "Sun Courier", "Fresh", "A-", "2010-02-08",
     "An exhilarating ride that makes you question what you see."),
    ("m/the_matrix", "Omar Reyes", "False", "Reel Talk", "Rotten", "1.5/4", "2010-02-09",
     "Empty spectacle wrapped in trench coats."),
    ("m/gigli", "Laila Noor", "True", "Sun Courier", "Rotten", "1/5", "2010-02-10",
     "A romance with all the spark of a damp match."),
    ("m/gigli", "Pia Lund", "False", "Film Notes", "Fresh", "3/5", "2010-02-11",
     "Not the disaster you have heard about, merely a muddle."),
    ("m/gigli", "Omar Reyes", "False", "Reel Talk", "Rotten", "", "2010-02-12", ""),
    ("m/unknown_film", "Pia Lund", "False", "Film Notes", "Fresh", "", "2010-02-13",
     "A modest gem that deserves a wider audience."),
    ("m/the_matrix", "Pia Lund", "False", "Film Notes", "", "", "2010-02-14", "Hard to say what I think."),
]
KAGGLE_MOVIES_HEADER = [
    "rotten_tomatoes_link", "movie_title", "movie_info", "critics_consensus", "content_rating", "genres", "directors",
    "authors", "actors", "original_release_date", "streaming_release_date", "runtime", "production_company",
    "tomatometer_status", "tomatometer_rating", "tomatometer_count", "audience_status", "audience_rating",
    "audience_count", "tomatometer_top_critics_count", "tomatometer_fresh_critics_count",
    "tomatometer_rotten_critics_count",
]
_CAST = ", ".join(f"Actor {n}" for n in range(1, 15))  # 14 names: the reader keeps 10
KAGGLE_MOVIES = [
    ("m/toy_story", "Toy Story", "A cowboy doll feels threatened when a space ranger toy arrives.",
     "Inventive and warm, Toy Story reinvented animation.", "G", "Animation, Comedy", "John Lasseter",
     "Joss Whedon", _CAST, "1995-11-22", "2001-03-20", "81", "Pixar", "Certified-Fresh", "100.0", "78",
     "Upright", "92", "1000", "10", "78", "0"),
    ("m/the_matrix", "The Matrix", "A hacker learns that his world is a simulation.",
     "Dazzling and smart, The Matrix rewired the action film.", "R", "Action & Adventure, Science Fiction",
     "Lana Wachowski, Lilly Wachowski", "Lana Wachowski", "Keanu Reeves, Carrie-Anne Moss", "1999-03-31", "",
     "136", "Warner Bros.", "Certified-Fresh", "88", "150", "Upright", "85", "2000", "30", "132", "18"),
    ("m/gigli", "Gigli", "A low-level gangster is told to kidnap a prosecutor's brother.",
     "Gigli is a baffling misfire.", "R", "Comedy, Romance", "Martin Brest", "Martin Brest",
     "Ben Affleck, Jennifer Lopez", "2003-08-01", "", "121", "Columbia", "Rotten", "6", "150", "Spilled", "13",
     "500", "30", "9", "141"),
    ("m/no_title", "", "A synopsis with no title.", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
     "", "", ""),
]

FLATIRON_REVIEWS_HEADER = ["id", "review", "rating", "fresh", "critic", "top_critic", "publisher", "date"]
FLATIRON_MOVIES_HEADER = ["id", "synopsis", "rating", "genre", "director", "writer", "theater_date", "dvd_date",
                          "currency", "box_office", "runtime", "studio"]

TOP_MOVIES_HEADER = [
    "", "title", "year", "synopsis", "critic_score", "people_score", "consensus", "total_reviews", "total_ratings",
    "type", "rating", "genre", "original_language", "director", "producer", "writer", "release_date_(theaters)",
    "release_date_(streaming)", "box_office_(gross_usa)", "runtime", "production_co", "sound_mix", "aspect_ratio",
    "view_the_collection", "crew", "link",
]


def _top_row(index: int, title: str, year: str, list_name: str, rating: str, score: str) -> list[str]:
    return [str(index), title, year, f"The story of {title}.", score, "80", f"{title} is a consensus pick.", "100",
            "1,000+", list_name, rating, "comedy, drama", "English", "Some Director", "Some Producer", "Some Writer",
            f"Jan 5, {year} wide", f"Feb 6, {int(year) + 1}", "$10.0M", "1h 40m", "Studio", "Dolby", "Flat", "",
            _CAST, f"http://www.rottentomatoes.com/m/{title.lower().replace(' ', '_')}"]


def _csv_bytes(header: list[str], rows: list, delimiter: str = ",", line_end: str = "\n") -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _critics_rows(rows: list, lower_titles: bool = False) -> list[list[str]]:
    out = []
    for index, (critic, fresh, (imdb, rtid, title), publication, quote, when) in enumerate(rows):
        out.append([critic, fresh, imdb, publication, quote, when, str(index) if lower_titles else rtid,
                    title.lower() if lower_titles else title])
    return out


def _write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def write_critics(root: Path) -> dict[str, Path]:
    body = _csv_bytes(CRITICS_HEADER, _critics_rows(CRITICS_2013))
    body += b"Hana Ito,fresh,0114709,Metro Screen,One field too many,2010-01-01,9559,Toy Story,EXTRA\n"
    return {
        "critics": _write(root / "critics" / "critics_2013.csv", body),
        "critics_2020": _write(root / "critics" / "critics_2020.csv",
                               _csv_bytes(CRITICS_HEADER, _critics_rows(CRITICS_2020, lower_titles=True))),
    }


def write_kaggle(root: Path, with_movies: bool = True) -> dict[str, Path]:
    folder = root / "kaggle-sample"
    out = {"kaggle_reviews": _write(folder / "rotten_tomatoes_critic_reviews.csv",
                                    _csv_bytes(KAGGLE_REVIEWS_HEADER, KAGGLE_REVIEWS))}
    if with_movies:
        out["kaggle_movies"] = _write(folder / "rotten_tomatoes_movies.csv",
                                      _csv_bytes(KAGGLE_MOVIES_HEADER, KAGGLE_MOVIES))
    return out


def write_flatiron(root: Path) -> dict[str, Path]:
    folder = root / "flatiron"
    reviews = _csv_bytes(FLATIRON_REVIEWS_HEADER, [
        ["1", "A brisk, funny caper with a heart as big as its budget.", "3/5", "fresh", "Rhea Gold", "0",
         "Film Threadz", "November 10, 2018"],
        ["1", "PLACEHOLDER_CP1252", "4/5", "fresh", "Sam Wu", "1", "Daily Planet", "May 23, 2018"],
        ["1", "", "", "rotten", "Tess Byrne", "0", "Screen Slate", "January 4, 2018"],
        ["1", "A tedious slog through familiar territory.", "1/4", "rotten", "Uma Pike", "1", "Globe", "Oct 9, 2017"],
        ["2", "A gorgeous, haunting meditation on grief.", "B+", "fresh", "Rhea Gold", "0", "Film Threadz",
         "March 2, 2016"],
        ["2", "Pretentious and inert.", "C-", "rotten", "Sam Wu", "1", "Daily Planet", "March 3, 2016"],
        ["2", 'Continuing the "slow cinema" tradition, quietly devastating.', "", "fresh", "Tess Byrne", "0",
         "Screen Slate", "March 4, 2016"],
    ], delimiter="\t", line_end="\r\n")
    # A cp1252 apostrophe (0x92) as the README says the real file has, and a row one field short.
    reviews = reviews.replace(b"PLACEHOLDER_CP1252", b"The director\x92s best work in years.")
    reviews += b"3\tOnly seven fields here.\t\tfresh\tVic Lane\t0\tBlog\r\n"
    movies = _csv_bytes(FLATIRON_MOVIES_HEADER, [
        ["1", "A heist crew plans one last job.", "PG-13", "Action and Adventure|Comedy", "Jane Roe",
         "Jane Roe|John Doe", "Oct 9, 1971", "Sep 25, 2001", "$", "600,000", "104 minutes", "Studio One"],
        ["2", "A widow rebuilds her life on a remote island.", "R", "Drama", "Ana Lin", "Ana Lin",
         "Aug 17, 2012", "Jan 1, 2013", "", "", "108 minutes", ""],
        ["3", "", "", "", "", "", "", "", "", "", "", ""],
    ], delimiter="\t")
    return {
        "flatiron_reviews": _write(folder / "rt.reviews.tsv.gz", reviews, gz=True),
        "flatiron_movies": _write(folder / "rt.movie_info.tsv.gz", movies, gz=True),
    }


def write_polarity(root: Path) -> dict[str, Path]:
    folder = root / "polarity"
    pos = (
        b"it is n't every day a sequel is this good , but this one earns its \" classic \" label . \n"
        b"a warm , funny -lrb- and surprisingly moving -rrb- film that does n't talk down to kids . \n"
        b"\n"
        b"the cast 's energy carries the movie past its thin plot . \n"
        b"a charming caf\xe9 romance that ca n't help but win you over . \n"  # latin-1, as in the original release
    )
    neg = (
        b"it 's a dull , plodding affair that wo n't hold anyone's attention . \n"
        b"the jokes are stale and the action is incoherent . . . a mess . \n"
        b"neither funny nor scary , just loud . \n"
    )
    return {"polarity_pos": _write(folder / "rt-polarity.pos", pos),
            "polarity_neg": _write(folder / "rt-polarity.neg", neg)}


def write_freshness(root: Path) -> dict[str, Path]:
    body = (
        b"Freshness,Review\r\n"
        b'2," A sharp, surprising comedy with a big heart."\r\n'
        b'0," A lifeless remake that forgets why the original worked."\r\n'
        b'1," Neither here nor there."\r\n'
        b'2," Bold and brilliant\xe2\x80? a must-see."\r\n'  # damaged UTF-8, as in the real file
        b'0," "\r\n'
        b'2," Un film magnifique, d\xc3\xa9j\xc3\xa0 culte."\r\n'
        + '0," Itâ€™s a chore to sit through."\r\n'.encode("utf-8")
    )
    return {"freshness": _write(root / "freshness" / "rotten_tomatoes_reviews.csv", body)}


def write_top_movies(root: Path) -> dict[str, Path]:
    rows = [
        _top_row(0, "Toy Story", "1995", "Animation", "G", "100"),
        _top_row(1, "The Matrix", "1999", "Action & Adventure", "R (Sci-Fi Violence|Brief Language)", "88"),
        _top_row(2, "Toy Story", "1995", "Kids & Family", "G", "100"),
        _top_row(3, "Gigli", "2003", "Comedy", "R (Strong Sexual Content)", "6"),
    ]
    return {"top_movies": _write(root / "top-movies" / "rotten_tomatoes_top_movies.csv",
                                 _csv_bytes(TOP_MOVIES_HEADER, rows, line_end="\r\n"))}


def write_generic_csv(root: Path) -> dict[str, Path]:
    body = _csv_bytes(["Film", "Critic", "Outlet", "Verdict", "Words"], [
        ["Toy Story", "Quinn Fox", "Pop Blog", "pos", "Still a delight."],
        ["Gigli", "Quinn Fox", "Pop Blog", "neg", "Still a disaster."],
        ["The Matrix", "Quinn Fox", "Pop Blog", "maybe", "Depends on the day."],
    ])
    body += b"The Matrix,Quinn Fox,Pop Blog,pos,Mind\x00 bending.\n"
    return {"csv": _write(root / "other" / "my_reviews.csv", body)}


def write_rt_fixtures(root: Path) -> dict[str, Path]:
    """Write one small file of every format under ``root``; returns key -> path (keys of FIXTURE_STATS,
    plus "readme", a non-data file that discovery must pass over)."""
    paths: dict[str, Path] = {}
    for writer in (write_critics, write_kaggle, write_flatiron, write_polarity, write_freshness,
                   write_top_movies, write_generic_csv):
        paths.update(writer(root))
    paths["readme"] = _write(root / "README.md", b"# Fixture data\nNot a data file.\n")
    return paths
