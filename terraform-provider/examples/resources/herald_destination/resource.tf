variable "pager_token" {
  type      = string
  sensitive = true
}

resource "herald_destination" "soc_pager" {
  display_name = "SOC pager"
  url          = "https://hooks.example.com/herald/soc"
  severities   = ["HIGH", "CRITICAL"]
  alert_types  = ["RULE", "SCHEDULED_RULE", "POLICY"]
  # Only alerts from these log types (omit for every log type).
  log_types = ["AWS.CloudTrail", "Okta.SystemLog"]
  # At most 120 requests a minute; more wait in Herald's queue (omit for no limit).
  rate_limit_per_minute = 120

  custom_headers = {
    "Authorization" = "Bearer ${var.pager_token}"
  }

  # Raise to rotate the signing secret in place; the previous secret keeps signing for the
  # grace period, so the receiver can switch over without rejecting a delivery.
  signing_secret_version      = 2
  signing_secret_grace_period = "24h"
}

# The receiver verifies deliveries with this secret.
output "soc_pager_signing_secret" {
  value     = herald_destination.soc_pager.signing_secret
  sensitive = true
}
