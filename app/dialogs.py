"""Dialogs and banners: "About this analysis", the decision-support banner, error messages.

Nothing here blocks the event loop: message boxes are opened with ``open()`` (window-modal, not
``exec()``), so tests and screenshot mode never hang on them.
"""

from __future__ import annotations

import html

from PySide6 import QtCore, QtWidgets

from ecgmodel.types import Analysis, EcgRecord

from . import DISCLAIMER


def show_error(parent: QtWidgets.QWidget, title: str, message: str) -> QtWidgets.QMessageBox:
    """A non-blocking warning box (deleted when closed); returns it so tests can find and close it."""
    box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message,
                                QtWidgets.QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorMessage")
    box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.open()
    return box


def analysis_details_html(analysis: Analysis | None, record: EcgRecord | None) -> str:
    """Every model's identity and the timings, as simple HTML."""
    parts = ["<h3>About this analysis</h3>"]
    if record is not None:
        src = record.source
        parts.append(f"<p><b>File:</b> {html.escape(str(src.path))} ({html.escape(src.format)})</p>")
    if analysis is None:
        parts.append("<p>No analysis has finished for this ECG yet.</p>")
    else:
        parts.append("<h4>Models</h4>")
        if not analysis.models:
            parts.append("<p>No model identity was reported.</p>")
        parts.append("<table cellspacing='0' cellpadding='3' border='1'>"
                     "<tr><th>Name</th><th>Version</th><th>Weights sha256</th><th>Model card</th></tr>")
        for info in analysis.models:
            parts.append(
                f"<tr><td>{html.escape(info.name)}</td><td>{html.escape(info.version)}</td>"
                f"<td><code>{html.escape(info.weights_sha256)}</code></td>"
                f"<td>{html.escape(info.card_path or '—')}</td></tr>")
        parts.append("</table>")
        parts.append("<h4>Timings</h4>")
        if analysis.timings_ms:
            items = "".join(f"<li>{html.escape(name)}: {value:.0f} ms</li>"
                            for name, value in analysis.timings_ms.items())
            parts.append(f"<ul>{items}</ul>")
        else:
            parts.append("<p>No timings reported.</p>")
        if analysis.warnings:
            parts.append("<h4>Warnings</h4><ul>" + "".join(
                f"<li>{html.escape(w)}</li>" for w in analysis.warnings) + "</ul>")
    parts.append(f"<p><i>{html.escape(DISCLAIMER)}</i></p>")
    return "".join(parts)


class AboutAnalysisDialog(QtWidgets.QDialog):
    """Model names, versions, weights hashes, model cards and timings of the current analysis."""

    def __init__(self, analysis: Analysis | None, record: EcgRecord | None,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About this analysis")
        self.setObjectName("aboutAnalysis")
        self.resize(760, 420)
        layout = QtWidgets.QVBoxLayout(self)
        self.text = QtWidgets.QTextBrowser()
        self.text.setOpenExternalLinks(False)
        self.text.setHtml(analysis_details_html(analysis, record))
        layout.addWidget(self.text)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)


class DisclaimerBanner(QtWidgets.QFrame):
    """A slim, dismissible, non-blocking banner with the decision-support disclaimer."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("disclaimerBanner")
        self.setStyleSheet("#disclaimerBanner { background: #fff4c2; border-bottom: 1px solid #d9c36a; }")
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 6, 4)
        self.label = QtWidgets.QLabel(f"⚕ {DISCLAIMER}")
        self.label.setWordWrap(True)
        close = QtWidgets.QToolButton()
        close.setText("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
