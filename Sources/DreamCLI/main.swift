print("dream: not yet")
