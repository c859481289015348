# The configuration the GitOps pipeline in this directory manages (see README.md here, and
# pipeline.sh / github-actions.yml). Header values come from sensitive variables, which the
# pipeline sets from its secrets (TF_VAR_pager_api_key, TF_VAR_chat_token).
#
# Every run of the pipeline must see the same state: give this configuration a remote backend
# (s3, gcs, azurerm, a Terraform Cloud workspace, …). Without one, Terraform keeps the state in
# this directory, which is enough to try the steps on one machine.

terraform {
  required_version = ">= 1.11"
  required_providers {
    herald = {
      source  = "herald/herald"
      version = "~> 0.1"
    }
  }
}

# Where Herald is and which token to use come from HERALD_ENDPOINT and HERALD_API_TOKEN, which
# pipeline.sh sets: a VIEWER token to plan, an ADMIN token to apply.
provider "herald" {}

variable "receiver_base" {
  type        = string
  description = "Base URL of the webhook receivers."
  default     = "https://hooks.example.com"
}

variable "pager_api_key" {
  type        = string
  description = "The API key the pager's receiver expects in X-Api-Key."
  sensitive   = true
}

variable "chat_token" {
  type        = string
  description = "The bearer token the chat webhook expects."
  sensitive   = true
}

resource "herald_destination" "pager" {
  display_name                = "SOC pager"
  url                         = "${var.receiver_base}/pager"
  severities                  = ["HIGH", "CRITICAL"]
  alert_types                 = ["RULE", "SCHEDULED_RULE", "POLICY"]
  custom_headers              = { "X-Api-Key" = var.pager_api_key }
  auto_disable_after_failures = 50
}

resource "herald_destination" "detection_chat" {
  display_name          = "Detection chat"
  url                   = "${var.receiver_base}/chat"
  severities            = ["MEDIUM", "HIGH", "CRITICAL"]
  log_types             = ["AWS.CloudTrail", "Okta.SystemLog"]
  custom_headers        = { "Authorization" = "Bearer ${var.chat_token}" }
  rate_limit_per_minute = 60
}

output "destination_ids" {
  value = {
    pager          = herald_destination.pager.id
    detection_chat = herald_destination.detection_chat.id
  }
}
