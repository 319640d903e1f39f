from highseas.cli import app

app(prog_name="highseas")
