"""`python -m oxzep7_deploy`: the same entry point as the console script."""

from oxzep7_deploy.cli.main import main

main()
