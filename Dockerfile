# datasafe with the client tools of its engines, for fleets on Kubernetes (docs/scaling.md).
#
#   docker build -t registry.example.com/datasafe:0.1.0 .                       # pg_dump 16
#   docker build --build-arg PG_MAJOR=15 -t registry.example.com/datasafe:0.1.0-pg15 .
#
# pg_dump must be at least as new as the newest PostgreSQL server backed up (PG_MAJOR, from the
# PostgreSQL project's Debian repository); mariadb-dump comes from Debian. The image runs as the
# non-root user 10001 (the rendered manifests' runAsUser) and needs no writable root file system:
# HOME and the working folder are /work, a volume in the manifests.
ARG PYTHON_VERSION=3.11
ARG DEBIAN_RELEASE=bookworm

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS build
# gcc and the headers build mysqlclient and datasafe's C module (libcrypto)
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libssl-dev libmariadb-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY datasafe ./datasafe
RUN python -m venv /opt/datasafe \
 && /opt/datasafe/bin/pip install --no-cache-dir '.[postgres,mysql,s3]' \
 && /opt/datasafe/bin/python -c "import datasafe.masking._native"

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE}
ARG DEBIAN_RELEASE
ARG PG_MAJOR=16
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt ${DEBIAN_RELEASE}-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" mariadb-client libmariadb3 \
 && apt-get purge -y --auto-remove curl gnupg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/datasafe /opt/datasafe
RUN groupadd --gid 10001 datasafe \
 && useradd --uid 10001 --gid 10001 --home-dir /work --no-create-home --shell /usr/sbin/nologin datasafe \
 && install -d -o 10001 -g 10001 /work
ENV PATH=/opt/datasafe/bin:/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH \
    HOME=/work \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /work
# a smoke test of the image: the tools are there and datasafe starts
RUN datasafe --version && pg_dump --version && mariadb-dump --version
ENTRYPOINT ["datasafe"]
CMD ["--help"]
