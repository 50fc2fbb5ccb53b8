// What every reader page reads first: its JSON config, the CSRF token its requests carry, and the
// project's suggestion mode; and the question a read of unlooked suggestions gets before it goes.
import { gettext } from "./i18n.js";

export function pageConfig(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

export const csrfToken = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";

// `needLook`: Accept-all confirms only what the reader has looked at (a project setting, on by default).
export function suggestionMode(project) {
  const assisted = project.suggestions === "assisted";
  return { assisted, needLook: assisted && project.suggestions_need_look !== false };
}

// A read made only of suggestions the reader never looked at is asked about once before it goes.
// The returned check is true when this submit stops to ask.
export function unlookedSubmitCheck(notify) {
  let asked = false;
  return (onlyUnlooked) => {
    if (asked || !onlyUnlooked()) return false;
    asked = true;
    notify(gettext("Every grade is a model suggestion you have not looked at. Submit again to send it as it is, or check the joints first."));
    return true;
  };
}
