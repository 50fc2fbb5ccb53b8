# One image for web and workers. The GPU worker builds with TORCH_INDEX pointing at a CUDA wheel index.
FROM python:3.11-slim
ARG TORCH_SPEC="torch==2.13.0"
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_ENV=production
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY config ./config
COPY annotation ./annotation
COPY consensus ./consensus
COPY modeling ./modeling
COPY frontend ./frontend
COPY scoring ./scoring
COPY manage.py ./
COPY deploy/gunicorn.conf.py ./deploy/gunicorn.conf.py
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" "$TORCH_SPEC" \
 && pip install --no-cache-dir .
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" python manage.py collectstatic --noinput
RUN useradd --create-home app && mkdir -p /media && chown app /media
USER app
EXPOSE 8000
# Worker class, count and threads: deploy/gunicorn.conf.py (chosen by measurement, see README).
CMD ["gunicorn", "config.wsgi:application", "-c", "deploy/gunicorn.conf.py"]
