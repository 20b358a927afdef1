// Inspection module: see DESIGN.md
