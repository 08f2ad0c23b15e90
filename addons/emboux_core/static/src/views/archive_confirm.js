/** @odoo-module **/
// License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
// Archiving a domain or a mailbox is a real disable on the mail platform, not
// just hiding a record in Odoo: the confirmation says what it does.
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { FormController } from "@web/views/form/form_controller";
import { formView } from "@web/views/form/form_view";
import { ListController } from "@web/views/list/list_controller";
import { listView } from "@web/views/list/list_view";

export function embouxArchiveMessage(resModel, many) {
    if (resModel === "emboux.mailbox") {
        return many
            ? _t("Archiving disables these mailboxes on the mail platform: their logins (IMAP, POP, SMTP) " +
                 "are refused and new mail to them is refused; the mail they hold is kept. " +
                 "Unarchive to enable them again.")
            : _t("Archiving disables this mailbox on the mail platform: its logins (IMAP, POP, SMTP) " +
                 "are refused and new mail to it is refused; the mail it holds is kept. " +
                 "Unarchive to enable it again.");
    }
    if (resModel === "emboux.domain") {
        return many
            ? _t("Archiving suspends these domains on the mail platform: mail to their addresses is refused " +
                 "and their mailboxes' logins are refused; nothing is deleted. Unarchive to resume them.")
            : _t("Archiving suspends this domain on the mail platform: mail to its addresses is refused " +
                 "and its mailboxes' logins are refused; nothing is deleted. Unarchive to resume it.");
    }
    return null;
}

export class EmbouxArchiveFormController extends FormController {
    get archiveDialogProps() {
        const props = super.archiveDialogProps;
        const body = embouxArchiveMessage(this.props.resModel, false);
        return body ? { ...props, body } : props;
    }
}

export class EmbouxArchiveListController extends ListController {
    get archiveDialogProps() {
        const props = super.archiveDialogProps;
        const body = embouxArchiveMessage(this.props.resModel, true);
        return body ? { ...props, body } : props;
    }
}

registry.category("views").add("emboux_archive_form", { ...formView, Controller: EmbouxArchiveFormController });
registry.category("views").add("emboux_archive_list", { ...listView, Controller: EmbouxArchiveListController });
