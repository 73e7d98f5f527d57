"""Recipe rows for the benchmark: realistic labels, loaded in bulk into PostgreSQL, MariaDB or
SQLite.

Every label names one ingredient drawn uniformly from INGREDIENTS (100 of them), so the
ingredient COMMON_KEYWORD appears in about 1% of the rows; RARE_KEYWORD in about 0.01%.
"""

import io
import itertools
import random
import sqlite3
from collections.abc import Iterator

import psycopg2
from sqlalchemy.engine import make_url

from bench.databases import libpq_url, pymysql_connect

STYLES = (
    "Classic", "Quick", "Easy", "Spicy", "Smoky", "Creamy", "Crispy", "Roasted", "Grilled",
    "Braised", "Slow-Cooked", "Pan-Fried", "Baked", "Stuffed", "Glazed", "Sticky", "Rustic",
    "Homestyle", "Weeknight", "Summer", "Winter", "Holiday", "Vegan", "Gluten-Free", "One-Pot",
    "Sheet-Pan", "Tangy", "Zesty", "Charred", "Golden",
)  # fmt: skip
INGREDIENTS = (
    "Chicken", "Beef", "Pork", "Lamb", "Salmon", "Tuna", "Shrimp", "Tofu", "Tempeh", "Duck",
    "Turkey", "Cod", "Halibut", "Mussel", "Clam", "Scallop", "Crab", "Lobster", "Squid", "Octopus",
    "Cauliflower", "Broccoli", "Cabbage", "Kale", "Spinach", "Chard", "Leek", "Onion", "Garlic",
    "Shallot", "Potato", "Sweet Potato", "Carrot", "Parsnip", "Beetroot", "Turnip", "Celeriac",
    "Pumpkin", "Butternut", "Zucchini", "Eggplant", "Pepper", "Tomato", "Cucumber", "Fennel",
    "Asparagus", "Artichoke", "Mushroom", "Chickpea", "Lentil", "Black Bean", "Kidney Bean",
    "Pea", "Corn", "Rice", "Quinoa", "Barley", "Farro", "Polenta", "Noodle", "Egg", "Feta",
    "Ricotta", "Cheddar", "Parmesan", "Mozzarella", "Halloumi", "Yogurt", "Coconut", "Peanut",
    "Almond", "Walnut", "Pistachio", "Sesame", "Ginger", "Turmeric", "Saffron", "Paprika",
    "Cumin", "Chipotle", "Miso", "Tahini", "Pesto", "Basil", "Cilantro", "Mint", "Rosemary",
    "Thyme", "Apple", "Pear", "Plum", "Apricot", "Cherry", "Lemon", "Orange", "Mango",
    "Pineapple", "Banana", "Chocolate", "Vanilla",
)  # fmt: skip
DISHES = (
    "Curry", "Stew", "Soup", "Salad", "Tacos", "Pie", "Risotto", "Pasta", "Casserole",
    "Stir-Fry", "Skewers", "Burgers", "Bowl", "Tart", "Gratin", "Frittata", "Flatbread",
    "Dumplings", "Ragu", "Chili", "Traybake", "Fritters", "Sandwich", "Wraps", "Pilaf",
)  # fmt: skip
SOURCES = ("Serious Eats", "No Recipes", "BBC Good Food", "Food52", "Bon Appetit", "Epicurious")

COMMON_KEYWORD = "saffron"  # one of INGREDIENTS: about 1% of the labels
RARE_KEYWORD = "quince"  # about 1 label in 10,000
RARE_SHARE = 1e-4

assert len(INGREDIENTS) == 100


def recipe_rows(count: int, seed: int = 0) -> Iterator[tuple[str, str, str]]:
    """(label, url, source) for `count` recipes, the same ones for the same seed."""
    rng = random.Random(seed)
    for number in range(count):
        ingredient = RARE_KEYWORD.title() if rng.random() < RARE_SHARE else rng.choice(INGREDIENTS)
        label = f"{rng.choice(STYLES)} {ingredient} {rng.choice(DISHES)}"
        slug = label.lower().replace(" ", "-")
        url = f"https://recipes.example.com/{seed}-{number}/{slug}"
        yield label, url, rng.choice(SOURCES)


def _copy_buffer(count: int, seed: int, submitter_id: int) -> io.StringIO:
    # Labels, urls and sources hold no tab, newline or backslash: COPY's text format as is.
    buffer = io.StringIO()
    buffer.writelines(
        f"{label}\t{url}\t{source}\t{submitter_id}\n"
        for label, url, source in recipe_rows(count, seed)
    )
    buffer.seek(0)
    return buffer


def load_postgres(url: str, count: int, seed: int, submitter_id: int = 1) -> None:
    """Append `count` recipes with COPY, then refresh the planner's statistics.

    The secondary indexes are dropped and rebuilt around the COPY: building a trigram index
    once is several times faster than maintaining it row by row.
    """
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            cursor.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i"
                " JOIN pg_class c ON c.relname = i.indexname"
                " LEFT JOIN pg_constraint k ON k.conindid = c.oid"
                " WHERE i.schemaname = current_schema() AND i.tablename = 'recipe'"
                " AND k.oid IS NULL"
            )
            indexes: list[tuple[str, str]] = cursor.fetchall()
            for name, _definition in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.copy_expert(
                "COPY recipe (label, url, source, submitter_id) FROM STDIN",
                _copy_buffer(count, seed, submitter_id),
            )
            for _name, definition in indexes:
                cursor.execute(definition)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE recipe")
    finally:
        connection.close()


def load_mysql(url: str, count: int, seed: int, submitter_id: int = 1) -> None:
    """Append `count` recipes in multi-row INSERTs (PyMySQL writes one per executemany batch),
    then refresh the optimizer's statistics."""
    connection = pymysql_connect(url)
    rows = ((*row, submitter_id) for row in recipe_rows(count, seed))
    try:
        with connection.cursor() as cursor:
            while batch := list(itertools.islice(rows, 5_000)):
                cursor.executemany(
                    "INSERT INTO recipe (label, url, source, submitter_id) VALUES (%s, %s, %s, %s)",
                    batch,
                )
            connection.commit()
            cursor.execute("ANALYZE TABLE recipe")
    finally:
        connection.close()


def load(url: str, count: int, seed: int) -> None:
    """`load_postgres` or `load_mysql`, as `url` says."""
    if make_url(url).get_backend_name() in ("mysql", "mariadb"):
        load_mysql(url, count, seed)
    else:
        load_postgres(libpq_url(url), count, seed)


def load_sqlite(path: str, count: int, seed: int, submitter_id: int = 1) -> None:
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.executemany(
                "INSERT INTO recipe (label, url, source, submitter_id) VALUES (?, ?, ?, ?)",
                ((*row, submitter_id) for row in recipe_rows(count, seed)),
            )
        connection.execute("ANALYZE")
    finally:
        connection.close()
