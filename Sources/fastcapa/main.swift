import FastcapaCLI

FastcapaMain.main()
