import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # mistakes.py

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXAMPLES = Path(__file__).resolve().parents[2] / "resources" / "examples"
