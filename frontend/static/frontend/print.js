// The print page's one control: open the browser's print dialog.
document.querySelector("[data-print]")?.addEventListener("click", () => window.print());
