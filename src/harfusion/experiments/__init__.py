"""Many runs through DVC's experiment queue (the `harfusion` command): ablation configs,
sweep and LOSO on one runner, sharding and remotes, the comparison and the report."""
