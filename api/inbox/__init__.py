"""The in-app inbox's API side: session tokens, feed views, the realtime hub and sockets."""
