data "herald_destination" "pager" {
  display_name = "SOC pager"
}

output "pager_url" {
  value = data.herald_destination.pager.url
}
