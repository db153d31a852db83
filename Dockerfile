# syntax=docker/dockerfile:1
# One image for every process: `winback api` (the default), `winback worker`, `winback migrate`.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY winback/ winback/
COPY workflows/ workflows/
COPY activities/ activities/
COPY api/ api/
# The migrations go into the wheel (a package), so `winback migrate` finds them in the image.
COPY migrations/ migrations/
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    WINBACK_API_HOST=0.0.0.0 \
    WINBACK_API_PORT=8000 \
    WINBACK_DATA_DIR=/var/lib/winback

RUN groupadd --system --gid 10001 winback \
    && useradd --system --uid 10001 --gid winback --home-dir /var/lib/winback \
        --shell /usr/sbin/nologin winback \
    && install -d -o winback -g winback -m 0750 /var/lib/winback

COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels

WORKDIR /var/lib/winback
USER 10001:10001

EXPOSE 8000 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WINBACK_API_PORT', '8000'), timeout=4)"

CMD ["winback", "api"]
