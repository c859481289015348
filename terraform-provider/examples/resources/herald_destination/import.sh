# A destination is imported by its id, or by its display name (matched ignoring case) with the
# `name:` prefix; header values are read back (with an ADMIN token), so the next plan is empty.
terraform import herald_destination.soc_pager dst_0123456789abcdef0123456789abcdef
terraform import herald_destination.soc_pager 'name:SOC pager'

# Or in configuration (Terraform 1.5+), which `terraform plan -generate-config-out=generated.tf`
# can write the resource block for:
#   import {
#     to = herald_destination.soc_pager
#     id = "name:SOC pager"
#   }
