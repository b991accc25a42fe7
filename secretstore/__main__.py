from secretstore.main import main

main()
