from dlworkflow.cli import main

main()
