#!/usr/bin/env bash
# The GitOps pipeline's steps, the same as github-actions.yml, for any CI system or a shell:
#
#   pipeline.sh pr      terraform init -lockfile=readonly, then terraform plan with a VIEWER
#                       token; the plan is kept in $ARTIFACT_DIR (tfplan, plan.txt)
#   pipeline.sh apply   terraform init -lockfile=readonly, then terraform apply with an ADMIN token
#   pipeline.sh drift   terraform plan -detailed-exitcode with a VIEWER token; exits 2 on drift
#
# Environment:
#   HERALD_ENDPOINT       Herald's base URL, such as https://herald.example.com
#   HERALD_VIEWER_TOKEN   a VIEWER API token (pr, drift): read-only, safe for untrusted branches
#   HERALD_ADMIN_TOKEN    an ADMIN API token (apply)
#   TF_VAR_…              the configuration's variables (here TF_VAR_pager_api_key, TF_VAR_chat_token)
#   GITOPS_DIR            the Terraform configuration (default: this script's directory)
#   ARTIFACT_DIR          where pr writes the plan (default: $GITOPS_DIR/artifacts)
#
# Terraform installs the provider the way its CLI configuration says (TF_CLI_CONFIG_FILE or
# ~/.terraformrc): a network_mirror or filesystem_mirror holding the package that
# `cargo xtask provider-mirror` writes. The lock file (.terraform.lock.hcl) is committed beside
# main.tf; init refuses a provider whose hashes it does not list.
set -euo pipefail

usage() {
    echo "usage: $0 pr|apply|drift" >&2
    exit 64
}

step="${1:-}"
case "$step" in pr | apply | drift) ;; *) usage ;; esac

cd "${GITOPS_DIR:-$(dirname "$0")}"
export TF_IN_AUTOMATION=1 TF_INPUT=0

require() {
    if [ -z "${!1:-}" ]; then
        echo "$0 $step: $1 is not set ($2)" >&2
        exit 64
    fi
}
require HERALD_ENDPOINT "Herald's base URL"

# The provider reads HERALD_API_TOKEN; each step hands it the token its role needs.
use_token() {
    require "$1" "$2"
    export HERALD_API_TOKEN="${!1}"
}

init() {
    # -lockfile=readonly: the committed lock file decides which package is acceptable; a
    # provider that is missing from it or hashes differently fails the job instead of being
    # added to a lock file nobody reviews.
    terraform init -input=false -lockfile=readonly
}

case "$step" in
pr)
    use_token HERALD_VIEWER_TOKEN "a VIEWER API token"
    init
    artifacts="${ARTIFACT_DIR:-artifacts}"
    mkdir -p "$artifacts"
    terraform plan -input=false -out="$artifacts/tfplan"
    # The saved plan holds the configuration's values, secrets included: keep the artifact
    # private. plan.txt is the redacted text reviewers read.
    terraform show -no-color "$artifacts/tfplan" >"$artifacts/plan.txt"
    ;;
apply)
    use_token HERALD_ADMIN_TOKEN "an ADMIN API token"
    init
    terraform apply -input=false -auto-approve
    ;;
drift)
    use_token HERALD_VIEWER_TOKEN "a VIEWER API token"
    init
    # 0: Herald matches the configuration; 2: it does not (the plan above names what differs);
    # 1: the plan failed.
    code=0
    terraform plan -input=false -detailed-exitcode || code=$?
    case "$code" in
    0) echo "No drift: Herald matches the configuration." ;;
    2) echo "Drift: Herald differs from the configuration (see the plan above)." >&2 ;;
    esac
    exit "$code"
    ;;
esac
