from vigila.cli import main

main()
