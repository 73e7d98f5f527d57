"""The soak: mixed traffic against the gunicorn stack on PostgreSQL or MariaDB, then every write
checked.

1. creates a throwaway database next to SOAK_DATABASE_URL's (PostgreSQL by default, or a
   mysql:// URL for MariaDB; dropped again at the end),
2. runs scripts/prestart.sh on it and starts scripts/start.sh with 2 workers on a free
   127.0.0.1 port,
3. sends 70% GET /recipe/{existing id}, 20% search and 10% POST from SOAK_CONCURRENCY clients
   for the given number of seconds, then stops the server with SIGTERM,
4. looks up every recipe that got a 201 directly in the database,

and prints one line on stdout:
`soak: 300s requests=N errors={...} 5xx=N acknowledged_writes=N found=N lost=N`.
Exits non-zero on any 5xx, any lost write or any other error (an unexpected status or a
failed connection); diagnostics go to stderr.

    python -m bench.soak [DURATION_SECONDS]     (scripts/soak.sh)
"""

import os
import sys

import httpx

from bench.databases import DEFAULT_ADMIN_URL, lost_writes, throwaway_database
from bench.servers import access_token, clean_env, run_script, serving_stack
from bench.traffic import Mix, Traffic

MIX = Mix(reads=0.7, searches=0.2)
# The seed's superuser, given a password so that the soak can log in and write.
SUPERUSER = "admin@recipeapi.com"
SUPERUSER_PASSWORD = "soak superuser password"
REQUESTS_PER_SECOND_BOUND = 10_000  # far above what one machine serves: a bound, not a target


def log(message: str) -> None:
    print(f"soak: {message}", file=sys.stderr, flush=True)


def existing_recipe_ids(base_url: str) -> list[int]:
    response = httpx.get(base_url + "/search/", params={"max_results": 100}, timeout=10)
    response.raise_for_status()
    ids = [recipe["id"] for recipe in response.json()["results"]]
    if not ids:
        raise RuntimeError("the seeded database has no recipes to read")
    return ids


def soak(seconds: int, admin_url: str, concurrency: int) -> int:
    with throwaway_database(admin_url, prefix="recipes_soak") as database_url:
        env = clean_env(DATABASE_URL=database_url, FIRST_SUPERUSER_PASSWORD=SUPERUSER_PASSWORD)
        prestart = run_script("prestart.sh", env, timeout=300)
        if prestart.returncode != 0:
            log(f"prestart failed ({prestart.returncode}):\n{prestart.stderr[-4000:]}")
            return 2
        with serving_stack(database_url, {"LOG_LEVEL": "warning"}) as server:
            token = access_token(server.base_url, SUPERUSER, SUPERUSER_PASSWORD)
            traffic = Traffic(
                server.base_url,
                threads=concurrency,
                mix=MIX,
                max_requests=seconds * REQUESTS_PER_SECOND_BOUND,
                max_seconds=seconds,
                request_timeout=30,
                recipe_ids=existing_recipe_ids(server.base_url),
                headers={"Authorization": f"Bearer {token}"},
            )
            traffic.start()
            traffic.join()
            exit_code = server.terminate(timeout=60)
            server_log = server.log()
        if exit_code != 0:
            traffic.unexpected[f"server_exit_{exit_code}"] += 1
        lost = lost_writes(database_url, traffic.acknowledged)
        acknowledged = len(traffic.acknowledged)
        errors = dict(sorted(traffic.unexpected.items()))
        if traffic.mismatches:
            errors["label_mismatch"] = len(traffic.mismatches)
        print(
            f"soak: {seconds}s requests={traffic.requests} errors={errors}"
            f" 5xx={traffic.server_errors} acknowledged_writes={acknowledged}"
            f" found={acknowledged - len(lost)} lost={len(lost)}",
            flush=True,
        )
        if traffic.server_errors or lost or errors:
            log("server log tail:\n" + server_log[-4000:])
            return 1
        return 0


def main() -> int:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    if seconds < 1:
        log("DURATION_SECONDS must be at least 1")
        return 2
    admin_url = os.environ.get("SOAK_DATABASE_URL", DEFAULT_ADMIN_URL)
    concurrency = int(os.environ.get("SOAK_CONCURRENCY", "16"))
    return soak(seconds, admin_url, concurrency)


if __name__ == "__main__":
    sys.exit(main())
