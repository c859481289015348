data "herald_destinations" "critical" {
  severity = "CRITICAL"
}

output "critical_destinations" {
  value = data.herald_destinations.critical.destinations[*].display_name
}
