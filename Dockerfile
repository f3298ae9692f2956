# The Thinkmeter image for server mode (docker-compose.yml): web, OTLP/gRPC, worker, beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . /app
RUN pip install . \
    && useradd --system --home-dir /app --shell /usr/sbin/nologin thinkmeter \
    && mkdir -p /app/var \
    && chown -R thinkmeter /app/var

USER thinkmeter
EXPOSE 8000 4317
CMD ["gunicorn", "thinkmeter.wsgi", "-b", "0.0.0.0:8000", "--workers", "4", "--threads", "4"]
