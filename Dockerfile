# One image for the API and every worker:
#   docker build -t notify .
#   docker run -p 8000:8000 -e RABBITMQ_URL=... -e MONGODB_URL=... notify      # the API
#   docker run -e RABBITMQ_URL=... -e MONGODB_URL=... notify python -m workers email
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NOTIFY_API_HOST=0.0.0.0 \
    NOTIFY_API_PORT=8000

RUN groupadd --system --gid 10001 notify \
    && useradd --system --uid 10001 --gid notify --no-create-home --home-dir /app notify

WORKDIR /app

# Only what the package needs, so .venv, .data and .git never reach the image.
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY api ./api
COPY workers ./workers
COPY notifyctl ./notifyctl

RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info

USER notify

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('NOTIFY_API_PORT', '8000') + '/health/live', timeout=3)"]

CMD ["python", "-m", "api"]
