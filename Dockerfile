# Production image: slim Python, non-root, migrations then the API.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/ssc

RUN groupadd --system ssc && useradd --system --gid ssc --home-dir /srv/ssc ssc

# The locked, hashed dependencies first (their layer survives code changes); `make lock`
# refreshes requirements/.
COPY requirements/run.txt ./requirements/run.txt
RUN pip install --require-hashes -r requirements/run.txt

COPY pyproject.toml README.md LICENSE alembic.ini ./
COPY app ./app
COPY api ./api
COPY token_service ./token_service
COPY qr ./qr
COPY alembic ./alembic
# Editable install keeps alembic/ next to the packages, where app.db finds the migrations.
RUN pip install --no-deps -e . && python -m pip check && mkdir -p /srv/ssc/var/keys && chown -R ssc:ssc /srv/ssc/var

USER ssc

ENV SSC_ENVIRONMENT=production \
    SSC_HOST=0.0.0.0 \
    SSC_PORT=8000 \
    SSC_VAR_DIR=/srv/ssc/var \
    SSC_KEY_DIR=/srv/ssc/var/keys

EXPOSE ${SSC_PORT}
VOLUME ["/srv/ssc/var"]

# Asks the port the API really listens on (SSC_PORT, also when set at `docker run`).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import os, sys, urllib.request; url = 'http://127.0.0.1:%s/healthz' % os.environ.get('SSC_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(url, timeout=2).status == 200 else 1)"

# SSC_DATABASE_URL, SSC_REDIS_URL and the three secrets come from the environment.
CMD ["sh", "-c", "ssc migrate && exec ssc serve"]
