from vidcam.cli import main

raise SystemExit(main())
