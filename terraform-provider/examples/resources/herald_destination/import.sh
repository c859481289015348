# A destination is imported by its id; header values are read back, so the next plan is empty.
terraform import herald_destination.soc_pager dst_0123456789abcdef0123456789abcdef
