# A complete configuration: several destinations, headers from a variable, a data source and
# outputs. Point the provider at Herald with HERALD_ENDPOINT and HERALD_API_TOKEN, then
# `terraform apply -var 'receiver_base=https://hooks.example.com'`.

terraform {
  required_providers {
    herald = {
      source = "herald/herald"
    }
  }
}

provider "herald" {}

variable "receiver_base" {
  type        = string
  description = "Base URL of the webhook receivers."
  default     = "https://hooks.example.com"
}

variable "team_headers" {
  type        = map(string)
  description = "Headers every team receiver expects, e.g. an API key."
  sensitive   = true
  default = {
    "X-Api-Key" = "change-me"
  }
}

# Each team and the log types it owns; [] takes alerts from every log type.
variable "teams" {
  type = map(list(string))
  default = {
    detection = []
    cloud     = ["AWS.CloudTrail", "AWS.S3ServerAccess", "AWS.VPCFlow"]
    identity  = ["Okta.SystemLog", "GSuite.Reports"]
  }
}

# Pages only for what cannot wait. If 50 deliveries in a row end FAILED, Herald disables it
# (disabled_reason says why) and holds its deliveries; the next plan then shows
# `enabled: false -> true`, and applying it, once the receiver is fixed, sends what was held.
resource "herald_destination" "pager" {
  display_name                = "SOC pager"
  url                         = "${var.receiver_base}/pager"
  severities                  = ["HIGH", "CRITICAL"]
  alert_types                 = ["RULE", "SCHEDULED_RULE", "POLICY"]
  auto_disable_after_failures = 50

  # Secret rotation as code: raise the version and apply. Herald issues a new signing_secret in
  # place, and the old one keeps signing beside it for the grace period while the pager's
  # receiver switches over (see the output below for when it stops).
  signing_secret_version      = 2
  signing_secret_grace_period = "48h"
}

# One destination per team, all severities, with the team's headers; each team receives the
# alerts from its own log types (alerts that name no log type, such as policy alerts, reach all).
# Team channels are chat webhooks that take about one message a second: a burst of alerts waits
# in Herald's queue and goes out at that pace instead of being refused by the receiver.
resource "herald_destination" "team" {
  for_each = var.teams

  display_name          = "Team ${each.key}"
  url                   = "${var.receiver_base}/teams/${each.key}"
  log_types             = each.value
  custom_headers        = merge(var.team_headers, { "X-Team" = each.key })
  rate_limit_per_minute = 60
}

# Errors in detections go to the platform on-call, kept switched off until it is ready.
resource "herald_destination" "platform" {
  display_name = "Detection platform errors"
  url          = "${var.receiver_base}/platform"
  alert_types  = ["RULE_ERROR", "SCHEDULED_RULE_ERROR", "SYSTEM_ERROR"]
  enabled      = false
}

data "herald_destinations" "critical" {
  severity   = "CRITICAL"
  depends_on = [herald_destination.pager, herald_destination.team, herald_destination.platform]
}

# Where a CloudTrail alert goes by severity: the teams that list it and those that take every log type.
data "herald_destinations" "cloudtrail" {
  log_type   = "AWS.CloudTrail"
  depends_on = [herald_destination.pager, herald_destination.team, herald_destination.platform]
}

output "cloudtrail_destinations" {
  value = sort(data.herald_destinations.cloudtrail.destinations[*].display_name)
}

output "pager_id" {
  value = herald_destination.pager.id
}

output "critical_destinations" {
  value = sort(data.herald_destinations.critical.destinations[*].display_name)
}

output "pager_previous_secret_expires_at" {
  value = herald_destination.pager.previous_signing_secret_expires_at
}

output "team_signing_secrets" {
  value     = { for k, d in herald_destination.team : k => d.signing_secret }
  sensitive = true
}
