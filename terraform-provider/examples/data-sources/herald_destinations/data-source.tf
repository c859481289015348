data "herald_destinations" "critical" {
  severity = "CRITICAL"
}

output "critical_destinations" {
  value = data.herald_destinations.critical.destinations[*].display_name
}

# The destinations an alert from CloudTrail would reach by severity.
data "herald_destinations" "cloudtrail" {
  log_type = "AWS.CloudTrail"
}

output "cloudtrail_destinations" {
  value = data.herald_destinations.cloudtrail.destinations[*].display_name
}
