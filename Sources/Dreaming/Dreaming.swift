// Dreaming module: see DESIGN.md
