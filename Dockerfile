# syntax=docker/dockerfile:1
# barrack-operator image: a wheel built in one stage, installed with its locked dependencies into a
# virtual environment in a second, copied alone onto a slim base in the last. No compiler, pip
# cache or source tree in the final image; it runs as a numeric non-root user.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS install
COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN python -m venv /opt/barrack \
 && /opt/barrack/bin/pip install --no-cache-dir --no-deps --require-hashes -r /tmp/requirements.lock \
 && /opt/barrack/bin/pip install --no-cache-dir --no-deps /wheels/*.whl \
 && /opt/barrack/bin/pip check \
 && /opt/barrack/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE}
COPY --from=install /opt/barrack /opt/barrack
ENV PATH=/opt/barrack/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080 9090
ENTRYPOINT ["barrack-operator"]
CMD ["run"]
