# nnunet in a container: the release of scripts/install.sh, built and run on Debian trixie (its libstdc++ has
# GLIBCXX_3.4.32 and its glibc is 2.41, so TorchSharp's native libraries load whatever the host runs).
# NOT built by this repository's CI (no container engine there): docs/install.md says how it is meant to be used.
#
#   docker build --build-arg NNUNET_COMMIT=$(git rev-parse HEAD) -t nnunet .
#   docker build --build-arg BACKEND=cuda -t nnunet:cuda .          # needs a NuGet feed serving TorchSharp-cuda-linux
#   docker run --rm nnunet --version
#   docker run --rm --gpus all --network host -v /shared:/shared -e nnUNet_preprocessed=... -e nnUNet_results=... \
#     nnunet:cuda worker --seed akka.tcp://nnunet@COORDINATOR:4053 --host $(hostname -i) --gpus 0,1
ARG BACKEND=cpu

FROM debian:trixie AS build
ARG BACKEND
# the commit, for a build context without .git (a git worktree's .git is a pointer the container cannot follow)
ARG NNUNET_COMMIT=unknown
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl git libicu76 \
 && rm -rf /var/lib/apt/lists/*
# Debian's archive has no .NET 10 SDK: Microsoft's install script, only in this build stage
RUN curl -fsSL https://dot.net/v1/dotnet-install.sh -o /tmp/dotnet-install.sh \
 && bash /tmp/dotnet-install.sh --channel 10.0 --install-dir /usr/share/dotnet \
 && ln -s /usr/share/dotnet/dotnet /usr/local/bin/dotnet
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
WORKDIR /src
COPY . .
RUN git config --global --add safe.directory /src \
 && NNUNET_COMMIT="$NNUNET_COMMIT" bash scripts/install.sh --prefix /opt/nnunet --backend "$BACKEND"

FROM debian:trixie-slim
# libicu: .NET's globalization; libc-bin (ldd) and libstdc++6 come with the base image
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libicu76 tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/nnunet /opt/nnunet
ENV PATH=/opt/nnunet/bin:$PATH
ENTRYPOINT ["nnunet"]
CMD ["--version"]
