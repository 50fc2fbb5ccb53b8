// Translations come from Django's JavaScript catalog (loaded before the modules); without it the
// page still works in English. The names match xgettext's defaults so makemessages finds them.
export function gettext(text) {
  return typeof window.gettext === "function" ? window.gettext(text) : text;
}

export function interpolate(format, values) {
  if (typeof window.interpolate === "function") return window.interpolate(format, values, true);
  return format.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
}
